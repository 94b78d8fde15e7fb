// Package packaging holds the tests of nodeagent's .deb and .rpm, built by
// nfpm from nfpm.yaml. They build two versions of each package from one
// static binary, install, upgrade and remove the .deb with its maintainer
// scripts in a scratch root (dpkg --force-script-chrootless, Debian's own
// mechanism for installing into a directory: the scripts see DPKG_ROOT), and
// do the same with the .rpm under rpm --root, without its scriptlets (they
// need a chroot with a shell and the shadow tools), whose text is checked
// instead.
//
// make package-test runs them; they need NFPM_BIN (the pinned nfpm the
// Makefile installs), dpkg and rpm. Without NODEAGENT_REQUIRE_TOOLS=1 a
// missing tool skips them.
package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// need returns the path of a tool, or skips (fails under
// NODEAGENT_REQUIRE_TOOLS=1) when it is missing.
func need(t *testing.T, name string) string {
	t.Helper()
	if name == "nfpm" {
		if p := os.Getenv("NFPM_BIN"); p != "" {
			return p
		}
	} else if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := name + " not found (make package-test installs nfpm; .ci/run installs dpkg and rpm)"
	if os.Getenv("NODEAGENT_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// binary builds the static binary of a version, as make package does,
// once per version for all tests.
func binary(t *testing.T, version string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[version]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "nodeagent-pkg")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "nodeagent")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X github.com/prometheus/common/version.Version="+version, "-o", bin, "../../cmd/nodeagent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	built[version] = bin
	return bin
}

// TestMain removes the binaries built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, bin := range built {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// pkg builds one package of the given version with nfpm.yaml from the
// repository root, and returns its path.
func pkg(t *testing.T, packager, version string) string {
	t.Helper()
	nfpm := need(t, "nfpm")
	bin := binary(t, version)
	out := t.TempDir()
	cmd := exec.Command(nfpm, "package", "--config", "deploy/packaging/nfpm.yaml", "--packager", packager, "--target", out+"/")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "NODEAGENT_BIN="+bin, "VERSION="+version, "ARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nfpm %s: %v\n%s", packager, err, b)
	}
	m, err := filepath.Glob(filepath.Join(out, "*."+packager))
	if err != nil || len(m) != 1 {
		t.Fatalf("nfpm made %v (%v), want one .%s", m, err, packager)
	}
	return m[0]
}

// scratchRoot makes an empty system for a package manager: passwd and group
// with root only, merged /usr as on Debian 12 and Fedora.
func scratchRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc", "usr/lib", "usr/bin", "usr/sbin", "var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{"lib", "bin", "sbin"} {
		if err := os.Symlink("usr/"+l, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd":          "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":           "root:x:0:\n",
		"etc/shadow":          "",
		"etc/gshadow":         "",
		"var/lib/dpkg/status": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// account finds name in root's /etc/passwd (or group): its fields.
func account(t *testing.T, root, file, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "etc", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Split(sc.Text(), ":"); fields[0] == name {
			return fields
		}
	}
	return nil
}

type fileState struct {
	Mode os.FileMode
	UID  uint32
	GID  uint32
}

func stat(t *testing.T, path string) (fileState, bool) {
	t.Helper()
	fi, err := os.Lstat(path)
	if os.IsNotExist(err) {
		return fileState{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fileState{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid}, true
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, ok := stat(t, path)
	return ok
}

// installedFiles is what both packages put on the system, less the
// per-distribution environment file.
var installedFiles = []string{
	"/etc/nodeagent",
	"/etc/nodeagent/web-config.yml",
	"/usr/bin/nodeagent",
	"/usr/lib/systemd/system/nodeagent-socket.service",
	"/usr/lib/systemd/system/nodeagent.service",
	"/usr/lib/systemd/system/nodeagent.socket",
	"/usr/lib/sysusers.d/nodeagent.conf",
	"/usr/share/doc/nodeagent/bare-metal.md",
}

// TestDebLifecycle installs the .deb into an empty root, changes its
// configuration, upgrades to a newer version, removes and purges it, and
// checks after each step what a user would find: files, modes and owners,
// the system user, the enabled unit, the configuration.
func TestDebLifecycle(t *testing.T) {
	dpkg := need(t, "dpkg")
	need(t, "deb-systemd-helper")
	need(t, "systemd-sysusers")
	v1, v2 := pkg(t, "deb", "1.2.0"), pkg(t, "deb", "1.2.1")
	root := scratchRoot(t)
	p := func(rel string) string { return filepath.Join(root, rel) }
	dpkgIn := func(args ...string) string {
		return run(t, nil, dpkg, append([]string{"--root=" + root, "--force-script-chrootless"}, args...)...)
	}

	// Install.
	dpkgIn("-i", v1)
	user := account(t, root, "passwd", "nodeagent")
	group := account(t, root, "group", "nodeagent")
	if user == nil || group == nil {
		t.Fatalf("no nodeagent user (%v) or group (%v) after install", user, group)
	}
	if user[6] != "/usr/sbin/nologin" || user[3] != group[2] {
		t.Errorf("user %v: want shell /usr/sbin/nologin and primary group %s", user, group[2])
	}
	if uid, _ := strconv.Atoi(user[2]); uid <= 0 || uid >= 1000 {
		t.Errorf("uid %d is not a system user's", uid)
	}
	gid, _ := strconv.ParseUint(group[2], 10, 32)
	checked := 0
	for _, f := range append(installedFiles, "/etc/default/nodeagent") {
		if !exists(t, p(f)) {
			t.Errorf("%s missing after install", f)
		}
		checked++
	}
	wantStat := map[string]fileState{
		"/usr/bin/nodeagent":            {Mode: 0o755, UID: 0, GID: 0},
		"/etc/nodeagent":                {Mode: os.ModeDir | 0o750, UID: 0, GID: uint32(gid)},
		"/etc/nodeagent/web-config.yml": {Mode: 0o640, UID: 0, GID: uint32(gid)},
		"/etc/default/nodeagent":        {Mode: 0o644, UID: 0, GID: 0},
	}
	for f, want := range wantStat {
		got, _ := stat(t, p(f))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", f, diff)
		}
		checked++
	}
	status := dpkgIn("-s", "nodeagent")
	for _, c := range []string{"/etc/default/nodeagent", "/etc/nodeagent/web-config.yml"} {
		if !strings.Contains(status, "\n "+c+" ") {
			t.Errorf("%s is not a conffile:\n%s", c, status)
		}
		checked++
	}
	wants := "/etc/systemd/system/multi-user.target.wants/nodeagent.service"
	if !exists(t, p(wants)) {
		t.Errorf("nodeagent.service not enabled: %s missing", wants)
	}
	if exists(t, p("/etc/systemd/system/sockets.target.wants/nodeagent.socket")) {
		t.Error("nodeagent.socket enabled by the package: only the service should be")
	}
	if out := run(t, nil, p("/usr/bin/nodeagent"), "--version"); !strings.Contains(out, "version 1.2.0") {
		t.Errorf("installed binary: %q, want version 1.2.0", out)
	}
	t.Logf("install: %d files, modes and conffiles checked; user %v", checked, user)

	// The administrator sets flags; the upgrade must keep them.
	conf := p("/etc/default/nodeagent")
	changed := "NODEAGENT_ARGS=\"--collector.cpu.info\"\n"
	if err := os.WriteFile(conf, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}

	// Upgrade.
	dpkgIn("-i", v2)
	if out := run(t, nil, p("/usr/bin/nodeagent"), "--version"); !strings.Contains(out, "version 1.2.1") {
		t.Errorf("upgraded binary: %q, want version 1.2.1", out)
	}
	if b, err := os.ReadFile(conf); err != nil || string(b) != changed {
		t.Errorf("after upgrade /etc/default/nodeagent = %q (%v), want the administrator's %q", b, err, changed)
	}
	if again := account(t, root, "passwd", "nodeagent"); !cmp.Equal(again, user) {
		t.Errorf("user after upgrade %v, want unchanged %v", again, user)
	}
	if !exists(t, p(wants)) {
		t.Error("nodeagent.service no longer enabled after upgrade")
	}
	if got, _ := stat(t, p("/etc/nodeagent/web-config.yml")); got.GID != uint32(gid) {
		t.Errorf("web-config.yml group %d after upgrade, want %d", got.GID, gid)
	}

	// Remove: the program goes, the configuration stays, and so does the
	// enablement (a dangling link systemd ignores), for a reinstall.
	dpkgIn("-r", "nodeagent")
	for _, f := range []string{"/usr/bin/nodeagent", "/usr/lib/systemd/system/nodeagent.service"} {
		if exists(t, p(f)) {
			t.Errorf("%s still there after remove", f)
		}
	}
	if b, err := os.ReadFile(conf); err != nil || string(b) != changed {
		t.Errorf("after remove /etc/default/nodeagent = %q (%v), want it kept until purge", b, err)
	}

	// Purge: the configuration goes too; the user stays (Debian policy).
	dpkgIn("--purge", "nodeagent")
	gone := 0
	for _, f := range append(installedFiles, "/etc/default/nodeagent", wants, "/var/lib/systemd/deb-systemd-helper-enabled/nodeagent.service.dsh-also", "/etc/systemd/system/nodeagent.service") {
		if exists(t, p(f)) {
			t.Errorf("%s still there after purge", f)
		}
		gone++
	}
	if account(t, root, "passwd", "nodeagent") == nil {
		t.Error("purge removed the nodeagent user; Debian keeps system users")
	}
	if out := dpkgIn("-l"); strings.Contains(out, "nodeagent") {
		t.Errorf("dpkg still knows nodeagent after purge:\n%s", out)
	}
	t.Logf("purge: %d paths checked gone", gone)
}

// TestDebPurgeKeepsAdministratorFiles: a certificate the administrator put
// in /etc/nodeagent survives purge, and the directory with it.
func TestDebPurgeKeepsAdministratorFiles(t *testing.T) {
	dpkg := need(t, "dpkg")
	need(t, "deb-systemd-helper")
	need(t, "systemd-sysusers")
	deb := pkg(t, "deb", "1.2.0")
	root := scratchRoot(t)
	run(t, nil, dpkg, "--root="+root, "--force-script-chrootless", "-i", deb)
	crt := filepath.Join(root, "etc/nodeagent/tls.crt")
	if err := os.WriteFile(crt, []byte("certificate\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	run(t, nil, dpkg, "--root="+root, "--force-script-chrootless", "--purge", "nodeagent")
	if !exists(t, crt) {
		t.Error("purge removed the administrator's /etc/nodeagent/tls.crt")
	}
	if exists(t, filepath.Join(root, "etc/nodeagent/web-config.yml")) {
		t.Error("purge left the package's web-config.yml")
	}
}

// rpmFile is one line of rpm's per-file query.
type rpmFile struct {
	Mode  string
	User  string
	Group string
	Flags string // c config, n noreplace
}

// TestRPMContents lists the .rpm's files with their modes, owners and
// config flags, and its scriptlets.
func TestRPMContents(t *testing.T) {
	rpm := need(t, "rpm")
	file := pkg(t, "rpm", "1.2.0")
	out := run(t, nil, rpm, "-qp", "--qf", "[%{FILENAMES}\t%{FILEMODES:perms}\t%{FILEUSERNAME}\t%{FILEGROUPNAME}\t%{FILEFLAGS:fflags}\n]", file)
	got := map[string]rpmFile{}
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			t.Fatalf("rpm query line %q", line)
		}
		got[f[0]] = rpmFile{Mode: f[1], User: f[2], Group: f[3], Flags: f[4]}
	}
	want := map[string]rpmFile{
		"/etc/nodeagent":                                   {"drwxr-x---", "root", "nodeagent", ""},
		"/etc/nodeagent/web-config.yml":                    {"-rw-r-----", "root", "nodeagent", "cn"},
		"/etc/sysconfig/nodeagent":                         {"-rw-r--r--", "root", "root", "cn"},
		"/usr/bin/nodeagent":                               {"-rwxr-xr-x", "root", "root", ""},
		"/usr/lib/systemd/system/nodeagent-socket.service": {"-rw-r--r--", "root", "root", ""},
		"/usr/lib/systemd/system/nodeagent.service":        {"-rw-r--r--", "root", "root", ""},
		"/usr/lib/systemd/system/nodeagent.socket":         {"-rw-r--r--", "root", "root", ""},
		"/usr/lib/sysusers.d/nodeagent.conf":               {"-rw-r--r--", "root", "root", ""},
		"/usr/share/doc/nodeagent/bare-metal.md":           {"-rw-r--r--", "root", "root", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rpm files (-want +got):\n%s", diff)
	}
	t.Logf("%d files compared", len(got))

	for _, r := range strings.Split(strings.TrimSpace(run(t, nil, rpm, "-qpR", file)), "\n") {
		if !strings.HasPrefix(r, "rpmlib(") {
			t.Errorf("dependency %q: the static binary needs none", r)
		}
	}

	scripts := run(t, nil, rpm, "-qp", "--scripts", file)
	// What each scriptlet must do, as Fedora's macros do it.
	for _, want := range []string{
		"preinstall scriptlet",
		"groupadd -r nodeagent",
		"useradd -r -g nodeagent",
		"postinstall scriptlet",
		"systemctl --no-reload preset nodeagent.service nodeagent.socket",
		"preuninstall scriptlet",
		"systemctl --no-reload disable --now nodeagent.socket nodeagent-socket.service nodeagent.service",
		"postuninstall scriptlet",
		"systemctl try-restart nodeagent.service nodeagent-socket.service",
	} {
		if !strings.Contains(scripts, want) {
			t.Errorf("scriptlets lack %q:\n%s", want, scripts)
		}
	}
	for _, forbidden := range []string{"userdel", "groupdel"} {
		if strings.Contains(scripts, forbidden) {
			t.Errorf("scriptlets run %s: system users stay after removal", forbidden)
		}
	}
}

// TestRPMLifecycle installs, upgrades and erases the .rpm under rpm --root
// without scriptlets (the user they would create is written into the
// root's /etc first), and checks what rpm itself does with the
// configuration: kept on upgrade when changed, saved as .rpmsave on erase.
func TestRPMLifecycle(t *testing.T) {
	rpm := need(t, "rpm")
	v1, v2 := pkg(t, "rpm", "1.2.0"), pkg(t, "rpm", "1.2.1")
	root := scratchRoot(t)
	p := func(rel string) string { return filepath.Join(root, rel) }
	// What %pre would have made.
	for name, line := range map[string]string{"passwd": "nodeagent:x:990:990::/:/sbin/nologin\n", "group": "nodeagent:x:990:\n"} {
		f, err := os.OpenFile(p("etc/"+name), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	rpmIn := func(args ...string) string {
		return run(t, nil, rpm, append([]string{"--root", root, "--nodeps", "--noscripts"}, args...)...)
	}
	run(t, nil, rpm, "--root", root, "--initdb")
	rpmIn("-i", v1)
	for _, f := range append(installedFiles, "/etc/sysconfig/nodeagent") {
		if !exists(t, p(f)) {
			t.Errorf("%s missing after install", f)
		}
	}
	if got, _ := stat(t, p("/etc/nodeagent/web-config.yml")); got.GID != 990 || got.Mode != 0o640 {
		t.Errorf("web-config.yml %+v, want mode 0640 group 990 (nodeagent)", got)
	}
	conf := p("/etc/sysconfig/nodeagent")
	changed := "NODEAGENT_ARGS=\"--collector.cpu.info\"\n"
	if err := os.WriteFile(conf, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	rpmIn("-U", v2)
	if out := run(t, nil, p("/usr/bin/nodeagent"), "--version"); !strings.Contains(out, "version 1.2.1") {
		t.Errorf("upgraded binary: %q, want version 1.2.1", out)
	}
	if b, _ := os.ReadFile(conf); string(b) != changed {
		t.Errorf("after upgrade /etc/sysconfig/nodeagent = %q, want the administrator's", b)
	}
	rpmIn("-e", "nodeagent")
	for _, f := range append(installedFiles, "/etc/sysconfig/nodeagent") {
		if exists(t, p(f)) {
			t.Errorf("%s still there after erase", f)
		}
	}
	if b, _ := os.ReadFile(conf + ".rpmsave"); string(b) != changed {
		t.Errorf("changed configuration not saved as .rpmsave on erase: %q", b)
	}
}
