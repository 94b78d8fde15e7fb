package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestImageSmoke runs the image the way a node does: a containerd of its
// own imports the image, runs it with the host's /proc, /sys and / mounted
// read-only and the host network, and the agent must answer, as uid 65534.
// make image-smoke runs it after make image (root, Debian's containerd and
// runc); without NODEAGENT_IMAGE_SMOKE (the make image output directory) it
// is skipped.
//
// containerd runs in a mount namespace of its own with a tmpfs on /run, so
// its shims' sockets and runc's state never reach the host's /run, where
// another containerd may live; its root, state and socket are in a
// temporary directory.
func TestImageSmoke(t *testing.T) {
	dir := os.Getenv("NODEAGENT_IMAGE_SMOKE")
	if dir == "" {
		t.Skip("set NODEAGENT_IMAGE_SMOKE to make image's output directory (make image-smoke does)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("containerd and runc need root")
	}
	for _, c := range []string{"containerd", "ctr", "runc", "unshare", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s: %v (apt-get install containerd runc)", c, err)
		}
	}
	tarballs, _ := filepath.Glob(filepath.Join(dir, "nodeagent-*-linux-"+runtime.GOARCH+".tar"))
	if len(tarballs) != 1 {
		t.Fatalf("want one tarball for linux/%s in %s, found %v", runtime.GOARCH, dir, tarballs)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(tarballs[0]) })
	if err != nil || len(m) != 1 || len(m[0].RepoTags) != 1 {
		t.Fatalf("%s: manifest %v, %v; want one image with one tag", tarballs[0], m, err)
	}
	tag := m[0].RepoTags[0]
	version := tag[strings.LastIndex(tag, ":")+1:]
	_, hostRunBefore := os.Stat("/run/containerd")

	ctrd := startContainerd(t)
	ctr := ctrd.ctr

	t.Run("OCI layout", func(t *testing.T) {
		// The layout, archived, is an oci-archive; containerd names the
		// image from its io.containerd.image.name annotation and keeps
		// the index as it is, so the digest must be the layout's.
		lp, err := layout.FromPath(filepath.Join(dir, "oci"))
		if err != nil {
			t.Fatal(err)
		}
		top, err := lp.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		im, err := top.IndexManifest()
		if err != nil || len(im.Manifests) != 1 {
			t.Fatalf("layout index: %v, %v", im, err)
		}
		archive := filepath.Join(t.TempDir(), "oci.tar")
		if err := tarDir(filepath.Join(dir, "oci"), archive); err != nil {
			t.Fatal(err)
		}
		t.Log(ctr(t, "images", "import", "--all-platforms", archive))
		ls := ctr(t, "images", "ls")
		t.Logf("ctr images ls:\n%s", ls)
		want := im.Manifests[0].Digest.String()
		found := false
		for _, line := range strings.Split(ls, "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == tag {
				found = true
				if f[2] != want {
					t.Errorf("%s imported as %s, the layout's index is %s", tag, f[2], want)
				}
				if !strings.Contains(line, "linux/amd64") || !strings.Contains(line, "linux/arm64") {
					t.Errorf("platforms of %s: %s", tag, line)
				}
			}
		}
		if !found {
			t.Errorf("%s not among the images", tag)
		}
		ctr(t, "images", "rm", tag)
	})

	t.Logf("ctr images import %s:\n%s", tarballs[0], ctr(t, "images", "import", tarballs[0]))
	if out := ctr(t, "images", "ls", "-q"); !strings.Contains(out, tag) {
		t.Fatalf("%s not among the images after import:\n%s", tag, out)
	}

	port := freePort(t)
	logFile := filepath.Join(ctrd.dir, "nodeagent.log")
	id := "nodeagent-image-smoke"
	// Host network and host PID namespace, as the DaemonSet has them
	// (this test's PID namespace: /proc/1/ns may be unreadable here).
	hostPID := fmt.Sprintf("pid:/proc/%d/ns/pid", os.Getpid())
	ctr(t, "run", "--detach", "--net-host", "--with-ns", hostPID, "--log-uri", "file://"+logFile,
		"--cgroup", "/"+id,
		"--mount", "type=bind,src=/proc,dst=/host/proc,options=rbind:ro",
		"--mount", "type=bind,src=/sys,dst=/host/sys,options=rbind:ro",
		"--mount", "type=bind,src=/,dst=/host/root,options=rbind:ro",
		tag, id,
		// ctr replaces the entrypoint when given arguments (the kubelet
		// appends them): name it again.
		"/bin/nodeagent",
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
		"--path.procfs=/host/proc", "--path.sysfs=/host/sys", "--path.rootfs=/host/root",
		"--path.udev.data=/host/root/run/udev/data",
		// This host's cgroup v2 hierarchy (hybrid layout).
		"--path.cgroupfs=/host/sys/fs/cgroup/unified",
	)
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		// Errors, not fatal: every step must run to leave nothing behind.
		try := func(args ...string) string {
			out, err := ctrd.run(args...)
			if err != nil {
				t.Errorf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return out
		}
		// SIGTERM, as the kubelet sends: the agent must exit 0.
		try("tasks", "kill", "--signal", "SIGTERM", id)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && !strings.Contains(try("tasks", "ls"), "STOPPED") {
			time.Sleep(200 * time.Millisecond)
		}
		// ctr tasks delete exits with the task's exit status.
		if out, err := ctrd.run("tasks", "delete", id); err != nil {
			t.Errorf("ctr tasks delete: %v (the agent's exit status on SIGTERM)\n%s", err, out)
			_, _ = ctrd.run("tasks", "delete", "--force", id)
		} else {
			t.Log("the agent exited 0 on SIGTERM")
		}
		try("containers", "delete", id)
		try("images", "rm", tag)
		if logs, err := os.ReadFile(logFile); err == nil {
			t.Logf("nodeagent's log:\n%s", logs)
		}
	}
	t.Cleanup(stop)

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := get("/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 60s: %d %s", code, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	} else {
		t.Logf("/healthz: %d %q", code, body)
	}

	code, body := get("/metrics/node")
	if code != http.StatusOK {
		t.Fatalf("/metrics/node: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics/node does not parse: %v", err)
	}
	series := 0
	for _, f := range families {
		series += len(f.GetMetric())
	}
	t.Logf("/metrics/node: %d families, %d series", len(families), series)
	for _, want := range []string{"node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_network_receive_bytes_total", "node_filesystem_avail_bytes", "node_load1"} {
		if _, ok := families[want]; !ok {
			t.Errorf("/metrics/node lacks %s (read from the host's /proc, /sys and /)", want)
		}
	}

	// Every layer on /metrics: which collectors failed on this host.
	_, all := get("/metrics")
	var failed []string
	ran := 0
	for _, line := range strings.Split(all, "\n") {
		if name, ok := strings.CutPrefix(line, `nodeagent_scrape_collector_success{collector="`); ok {
			ran++
			if strings.HasSuffix(line, " 0") {
				failed = append(failed, name[:strings.Index(name, `"`)])
			}
		}
	}
	t.Logf("/metrics: %d collectors ran, failed: %v", ran, failed)
	if ran == 0 || slices.Contains(failed, "cadvisor") {
		t.Errorf("the container layer must work with the host's cgroup hierarchy and PID namespace: %d collectors ran, failed: %v", ran, failed)
	}

	_, own := get("/metrics/nodeagent")
	info := ""
	for _, line := range strings.Split(own, "\n") {
		if strings.HasPrefix(line, "nodeagent_build_info{") {
			info = line
		}
	}
	t.Logf("%s", info)
	if !strings.Contains(info, `version="`+version+`"`) || strings.Contains(info, `revision="unknown"`) {
		t.Errorf("nodeagent_build_info: %q, want version %s and a revision", info, version)
	}

	// The agent's process, seen from the host, runs as nobody:nogroup.
	pids := ctr(t, "tasks", "ps", id)
	checked := 0
	for _, line := range strings.Split(pids, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		status, err := os.ReadFile("/proc/" + f[0] + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Gid:") {
				t.Logf("pid %s %s", f[0], l)
				if ids := strings.Fields(l)[1:]; strings.Join(ids, " ") != "65534 65534 65534 65534" {
					t.Errorf("pid %s: %s, want 65534 for real, effective, saved and filesystem ids", f[0], l)
				}
				checked++
			}
		}
	}
	if checked != 2 {
		t.Errorf("checked %d uid/gid lines of the agent's processes (%q), want 2", checked, pids)
	}

	stop()
	ctrd.stop(t)
	if _, err := os.Stat("/run/containerd"); errors.Is(hostRunBefore, fs.ErrNotExist) && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the host's /run/containerd appeared (%v); the private containerd must stay in its namespace", err)
	}
}

// privateContainerd is a containerd in a temporary directory.
type privateContainerd struct {
	dir, sock string
	cmd       *exec.Cmd
	done      chan error
	stopped   bool
}

func startContainerd(t *testing.T) *privateContainerd {
	t.Helper()
	// Short: the socket path must fit in a sockaddr_un.
	dir, err := os.MkdirTemp("", "nodeagent-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &privateContainerd{dir: dir, sock: filepath.Join(dir, "containerd.sock"), done: make(chan error, 1)}
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
# No CRI: nothing here is Kubernetes; no metrics or debug listeners.
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc", filepath.Join(dir, "opt"))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// sh execs containerd, so the process waited for is containerd.
	c.cmd = exec.Command("unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount -t tmpfs -o mode=0755,size=16m nodeagent-smoke /run && exec containerd --config "$1"`,
		"sh", filepath.Join(dir, "config.toml"))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "containerd.log")); err == nil {
				t.Logf("containerd's log:\n%s", b)
			}
		}
		_ = os.RemoveAll(dir)
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := c.run("version"); err == nil {
			break
		}
		select {
		case err := <-c.done:
			c.stopped = true
			t.Fatalf("containerd exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("containerd did not answer within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	v, _ := c.run("version")
	t.Logf("private containerd on %s:\n%s", c.sock, v)
	return c
}

// run runs ctr against this containerd in the k8s.io namespace, the
// kubelet's.
func (c *privateContainerd) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", c.sock, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	return string(out), err
}

func (c *privateContainerd) ctr(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run(args...)
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *privateContainerd) stop(t *testing.T) {
	if c.stopped {
		return
	}
	c.stopped = true
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Error("containerd did not stop on SIGTERM within 30s; killing it")
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tarDir archives the files under dir into path.
func tarDir(dir, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		return fmt.Errorf("archiving %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
