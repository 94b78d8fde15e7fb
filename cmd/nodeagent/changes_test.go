package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyTree copies a fixture tree (with its symbolic links, which sysfs
// fixtures are made of) into a directory the test may change.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
	return dst
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatalf("appending to %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("closing %s: %v", path, err)
	}
}

// TestChangesSeenNextScrape: whatever the agent caches or keeps open
// between scrapes (container descriptors and labels, constant host files),
// a change on the node is served by the next scrape: a container cgroup
// that appears and goes away, a mount added, a disk hot-plugged, a network
// interface added, a container that starts to swap.
func TestChangesSeenNextScrape(t *testing.T) {
	host := copyTree(t, "../../internal/collectortest/testdata/host")
	cg := copyTree(t, "../../collectors/cadvisor/testdata/cadvisor/bare-metal/cgroup")
	_, addr, _ := runAgentWith(t, func(o *serveOptions) {
		o.paths.ProcFS = filepath.Join(host, "proc")
		o.paths.SysFS = filepath.Join(host, "sys")
		o.paths.RootFS = filepath.Join(host, "root")
		o.paths.UdevData = filepath.Join(host, "udev")
		o.paths.CgroupFS = cg
	})
	base := "http://" + addr
	scrape := func(path string) string {
		t.Helper()
		code, body := get(t, nil, base+path)
		if code != 200 {
			t.Fatalf("%s: status %d: %s", path, code, body)
		}
		return body
	}

	const oldID = "docker-803414c480fe79faf409b9af7fcf12493ca596c8eb3e998eb5673fd0f793923d.scope"
	const newID = "docker-1111111111111111111111111111111111111111111111111111111111111111.scope"
	newSeries := `id="/system.slice/` + newID + `"`
	checks := []struct {
		name, path, series string
		change             func()
	}{
		{"container appears", "/metrics/cadvisor", newSeries, func() {
			if out, err := exec.Command("cp", "-a", filepath.Join(cg, "system.slice", oldID), filepath.Join(cg, "system.slice", newID)).CombinedOutput(); err != nil {
				t.Fatalf("copying a container's cgroup: %v\n%s", err, out)
			}
		}},
		{"mount added", "/metrics/node", `mountpoint="/mnt/added"`, func() {
			appendLine(t, filepath.Join(host, "proc", "1", "mountinfo"), "99 1 8:33 / /mnt/added rw,relatime shared:99 - ext4 /dev/sdc1 rw")
		}},
		{"disk hot-plugged", "/metrics/node", `node_disk_reads_completed_total{device="sdz"}`, func() {
			appendLine(t, filepath.Join(host, "proc", "diskstats"), "   8     400 sdz 17 0 136 4 0 0 0 0 0 8 4 0 0 0 0 0 0")
		}},
		{"interface added", "/metrics/node", `node_network_receive_bytes_total{device="added0"}`, func() {
			appendLine(t, filepath.Join(host, "proc", "net", "dev"), "added0: 4242 1 0 0 0 0 0 0 2121 1 0 0 0 0 0 0")
		}},
	}
	for _, c := range checks {
		if strings.Contains(scrape(c.path), c.series) {
			t.Fatalf("%s: %s served before the change", c.name, c.series)
		}
	}
	for _, c := range checks {
		c.change()
	}
	for _, c := range checks {
		if body := scrape(c.path); !strings.Contains(body, c.series) {
			t.Errorf("%s: the next scrape of %s does not serve %s", c.name, c.path, c.series)
		}
	}

	// The container starts to swap. memory.swap.current counts a cgroup's
	// subtree, so the agent serves the zero of system.slice's to the
	// cgroups below it without reading theirs; swap charged to the
	// container is charged to system.slice too, and the next scrape reads
	// and serves it.
	swapLine := `container_memory_swap{container="",id="/system.slice/` + oldID + `",image="",name="` + strings.TrimSuffix(strings.TrimPrefix(oldID, "docker-"), ".scope") + `",namespace="",pod=""} `
	if body := scrape("/metrics/cadvisor"); !strings.Contains(body, swapLine+"0\n") {
		t.Fatalf("no swap served before the change: want %s0", swapLine)
	}
	for _, dir := range []string{filepath.Join(cg, "system.slice", oldID), filepath.Join(cg, "system.slice")} {
		if err := os.WriteFile(filepath.Join(dir, "memory.swap.current"), []byte("8192\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if body := scrape("/metrics/cadvisor"); !strings.Contains(body, swapLine+"8192\n") {
		t.Errorf("container starts swapping: the next scrape does not serve %s8192", swapLine)
	}

	// The container goes away: its series go with the next scrape, and
	// the container that stays is still served.
	if err := os.RemoveAll(filepath.Join(cg, "system.slice", newID)); err != nil {
		t.Fatal(err)
	}
	body := scrape("/metrics/cadvisor")
	if strings.Contains(body, newSeries) {
		t.Errorf("the next scrape after the container's cgroup was removed still serves %s", newSeries)
	}
	if !strings.Contains(body, `id="/system.slice/`+oldID+`"`) {
		t.Errorf("the container that stayed is no longer served")
	}
}
