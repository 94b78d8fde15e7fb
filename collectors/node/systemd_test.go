package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The systemd collector's tests run a private dbus-daemon (Debian's dbus
// package) on a socket in a temporary directory and export a fake systemd
// manager on it: the org.freedesktop.systemd1 name, the Manager interface's
// ListUnits and the properties go-systemd and node_exporter read.

// privateBus is a dbus-daemon of the test's own.
type privateBus struct {
	t       testing.TB
	dir     string
	address string // unix:path=<dir>/bus
	cmd     *exec.Cmd
}

// busConfig lets every local client own any name and call anything.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// startBus starts a dbus-daemon on a new socket, or skips the test when
// dbus-daemon is not installed.
func startBus(t testing.TB) *privateBus {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("dbus-daemon not found: install Debian's dbus package (.ci/run does) to test the systemd collector against a private bus")
	}
	// A short directory: a unix socket path has at most 107 bytes, and
	// t.TempDir() names can be long.
	dir, err := os.MkdirTemp("", "nodeagent-dbus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	b := &privateBus{t: t, dir: dir, address: "unix:path=" + filepath.Join(dir, "bus")}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *privateBus) start() {
	b.t.Helper()
	cfg := filepath.Join(b.dir, "bus.conf")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, busConfig, filepath.Join(b.dir, "bus")), 0o644); err != nil {
		b.t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+cfg, "--nofork", "--print-address")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	// It prints its address once it listens.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.t.Fatalf("dbus-daemon did not start: %v\n%s", err, stderr.String())
	}
	if !strings.HasPrefix(line, "unix:path="+filepath.Join(b.dir, "bus")) {
		b.t.Fatalf("dbus-daemon listens on %q, want %s", line, b.address)
	}
	b.cmd = cmd
}

// stop ends the daemon: every connection to it is closed.
func (b *privateBus) stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	b.cmd = nil
	_ = os.Remove(filepath.Join(b.dir, "bus"))
}

// fakeUnit is one unit the fake manager lists, with the properties it
// answers for, by interface (Service, Socket, Timer, Mount, Unit).
type fakeUnit struct {
	name, load, active string
	props              map[string]map[string]any
}

// fakeManager is a systemd manager on a private bus.
type fakeManager struct {
	mu             sync.Mutex
	version        string
	virtualization string
	systemState    string
	units          []fakeUnit
	wedged         chan struct{} // non-nil: every call waits until it is closed
	senders        map[string]bool
	conn           *dbus.Conn
}

// serveManager connects to bus, takes org.freedesktop.systemd1 and exports
// the manager; it is closed with the test.
func serveManager(t testing.TB, bus *privateBus, m *fakeManager) {
	t.Helper()
	conn, err := dbus.Dial(bus.address)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Auth(nil); err != nil {
		t.Fatal(err)
	}
	if err := conn.Hello(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Export(managerMethods{m}, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"); err != nil {
		t.Fatal(err)
	}
	if err := conn.ExportSubtree(managerProperties{m}, "/org/freedesktop/systemd1", "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName("org.freedesktop.systemd1", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("taking org.freedesktop.systemd1: %v %v", reply, err)
	}
	m.mu.Lock()
	m.conn = conn
	if m.senders == nil {
		m.senders = map[string]bool{}
	}
	m.mu.Unlock()
	t.Cleanup(func() { conn.Close() })
}

// wait blocks while the manager is wedged, and records who called.
func (m *fakeManager) wait(msg *dbus.Message) {
	m.mu.Lock()
	gate := m.wedged
	if msg != nil {
		if s, ok := msg.Headers[dbus.FieldSender].Value().(string); ok {
			m.senders[s] = true
		}
	}
	m.mu.Unlock()
	if gate != nil {
		<-gate
	}
}

func (m *fakeManager) wedge() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wedged = make(chan struct{})
}

func (m *fakeManager) unwedge() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.wedged != nil {
		close(m.wedged)
		m.wedged = nil
	}
}

func (m *fakeManager) callers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.senders)
}

type managerMethods struct{ m *fakeManager }

func unitPath(name string) dbus.ObjectPath {
	return dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + sdbus.PathBusEscape(name))
}

func (mm managerMethods) ListUnits(msg dbus.Message) ([]sdbus.UnitStatus, *dbus.Error) {
	mm.m.wait(&msg)
	mm.m.mu.Lock()
	defer mm.m.mu.Unlock()
	out := make([]sdbus.UnitStatus, 0, len(mm.m.units))
	for _, u := range mm.m.units {
		out = append(out, sdbus.UnitStatus{
			Name: u.name, Description: u.name, LoadState: u.load, ActiveState: u.active, SubState: u.active,
			Path: unitPath(u.name), JobPath: "/",
		})
	}
	return out, nil
}

type managerProperties struct{ m *fakeManager }

func (mp managerProperties) Get(msg dbus.Message, iface, name string) (dbus.Variant, *dbus.Error) {
	mp.m.wait(&msg)
	mp.m.mu.Lock()
	defer mp.m.mu.Unlock()
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	if path == "/org/freedesktop/systemd1" && iface == "org.freedesktop.systemd1.Manager" {
		switch name {
		case "Version":
			return dbus.MakeVariant(mp.m.version), nil
		case "Virtualization":
			return dbus.MakeVariant(mp.m.virtualization), nil
		case "SystemState":
			return dbus.MakeVariant(mp.m.systemState), nil
		}
	}
	for _, u := range mp.m.units {
		if unitPath(u.name) != path {
			continue
		}
		if v, ok := u.props[strings.TrimPrefix(iface, "org.freedesktop.systemd1.")][name]; ok {
			return dbus.MakeVariant(v), nil
		}
	}
	return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{"no property " + iface + "." + name + " on " + string(path)})
}

// hostUnits is a small host: services in every state, a failed one, a
// crash-looping one, a timer, a socket, a mount, a slice, a unit that did
// not load and one reloading.
func hostUnits() []fakeUnit {
	svc := func(name, active, typ string, restarts uint32, tasks uint64) fakeUnit {
		return fakeUnit{name: name, load: "loaded", active: active, props: map[string]map[string]any{
			"Service": {"Type": typ, "NRestarts": restarts, "TasksCurrent": tasks, "TasksMax": uint64(4915)},
			"Unit":    {"ActiveEnterTimestamp": uint64(1699990000123456)},
		}}
	}
	return []fakeUnit{
		svc("ssh.service", "active", "notify", 0, 1),
		svc("cron.service", "active", "simple", 0, 2),
		svc("nginx.service", "failed", "forking", 0, 0),
		svc("flaky.service", "activating", "simple", 7, 18446744073709551615),
		svc("backup.service", "inactive", "oneshot", 0, 0),
		svc("reloader.service", "reloading", "notify", 1, 3),
		{name: "backup.timer", load: "loaded", active: "active", props: map[string]map[string]any{
			"Timer": {"LastTriggerUSec": uint64(1699996400000000)},
			"Unit":  {"ActiveEnterTimestamp": uint64(1699980000000000)},
		}},
		{name: "nodeagent.socket", load: "loaded", active: "active", props: map[string]map[string]any{
			"Socket": {"NAccepted": uint32(42), "NConnections": uint32(3), "NRefused": uint32(1)},
			"Unit":   {"ActiveEnterTimestamp": uint64(1699980000000000)},
		}},
		{name: "old.socket", load: "loaded", active: "active", props: map[string]map[string]any{
			// systemd before 239 has no NRefused.
			"Socket": {"NAccepted": uint32(5), "NConnections": uint32(0)},
		}},
		{name: "boot.mount", load: "loaded", active: "active", props: map[string]map[string]any{
			"Mount": {"Type": "ext4"},
		}},
		{name: "system.slice", load: "loaded", active: "active"},
		{name: "gone.service", load: "not-found", active: "inactive"},
	}
}

func newFakeHost() *fakeManager {
	return &fakeManager{version: "252.38-1~deb12u1", virtualization: "kvm", systemState: "degraded", units: hostUnits()}
}

// systemdAt builds the systemd collector on bus with the given flags.
func systemdAt(t testing.TB, bus *privateBus, args ...string) *systemdCollector {
	t.Helper()
	env := collectortest.TempEnv(t, t.TempDir())
	c := collectortest.MustBuild(t, "systemd", env, append([]string{"--collector.systemd.bus-address=" + bus.address}, args...)...)
	return c.(*systemdCollector)
}

func TestSystemdGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		edit func(*fakeManager)
	}{
		// node_exporter's defaults: every loaded unit but automounts,
		// devices, mounts, scopes and slices.
		{name: "default"},
		{name: "all-metrics", args: []string{
			"--collector.systemd.enable-restarts-metrics",
			"--collector.systemd.enable-start-time-metrics",
			"--collector.systemd.enable-task-metrics",
		}},
		{name: "include-exclude", args: []string{
			`--collector.systemd.unit-include=.+\.(service|mount)`,
			`--collector.systemd.unit-exclude=(cron|backup)\.service`,
		}},
		// Before systemd 212 there is no SystemState and no timer
		// trigger time; bare metal has no virtualization.
		{name: "old-systemd", edit: func(m *fakeManager) { m.version = "208"; m.virtualization = "" }},
		{name: "running", edit: func(m *fakeManager) {
			m.systemState = "running"
			m.units = m.units[:2]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bus := startBus(t)
			m := newFakeHost()
			if tc.edit != nil {
				tc.edit(m)
			}
			serveManager(t, bus, m)
			c := systemdAt(t, bus, tc.args...)
			collectortest.CompareCollectorGolden(t, c, filepath.Join("testdata", "systemd", tc.name+".prom"))
		})
	}
}

// gather runs one scrape of the systemd collector through the Scraper,
// with the given timeout, and returns its success, the time it took and
// how many node_systemd_* series it served.
func gather(t *testing.T, s *collectors.Scraper, timeout time.Duration) (ok float64, took time.Duration, series int) {
	t.Helper()
	start := time.Now()
	mfs, err := s.Gather(start.Add(timeout), []string{"systemd"})
	took = time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	ok = -1
	for _, mf := range mfs {
		switch {
		case mf.GetName() == "nodeagent_scrape_collector_success":
			ok = mf.GetMetric()[0].GetGauge().GetValue()
		case strings.HasPrefix(mf.GetName(), "node_systemd_"):
			series += len(mf.GetMetric())
		}
	}
	return ok, took, series
}

func newSystemdScraper(t *testing.T, c collectors.Collector, timeout time.Duration) *collectors.Scraper {
	t.Helper()
	s, err := collectors.NewScraper([]collectors.Instance{{Name: "systemd", Layer: collectors.LayerNode, Collector: c}},
		collectors.ScraperOptions{Timeout: timeout, MaxConcurrency: 1, Logger: collectortest.Logger(t), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A manager that never answers fails the scrape of this collector at its
// deadline, and the collector returns then too (it is not left stuck, so
// the next scrape runs it again and succeeds once the manager answers).
func TestSystemdWedgedManager(t *testing.T) {
	t.Parallel()
	bus := startBus(t)
	m := newFakeHost()
	serveManager(t, bus, m)
	c := systemdAt(t, bus)
	// Scrapes of the answering manager get a generous deadline (the race
	// detector on a loaded machine is slow); the wedged one a short one.
	const slack, timeout = 10 * time.Second, 300 * time.Millisecond
	s := newSystemdScraper(t, c, slack)

	if ok, _, n := gather(t, s, slack); ok != 1 || n == 0 {
		t.Fatalf("first scrape: success %v with %d series, want 1 and some series", ok, n)
	}
	m.wedge()
	defer m.unwedge()
	ok, took, n := gather(t, s, timeout)
	if ok != 0 || n != 0 {
		t.Errorf("scrape of a wedged manager: success %v with %d series, want 0 and none", ok, n)
	}
	if took > timeout+2*time.Second {
		t.Errorf("scrape of a wedged manager took %v, deadline %v", took, timeout)
	}

	// Update itself returns at the deadline, with the deadline's error.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := collectortest.Exposition(t, withContext{c, ctx})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Update on a wedged manager: %v, want the deadline's error", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Update on a wedged manager returned after %v; deadline 200ms", took)
	}

	m.unwedge()
	if ok, _, n := gather(t, s, slack); ok != 1 || n == 0 {
		t.Errorf("scrape after the manager answers again: success %v with %d series, want 1", ok, n)
	}
	if got := m.callers(); got != 1 {
		t.Errorf("the manager saw %d clients, want 1 connection reused across scrapes", got)
	}
}

// withContext runs a collector's Update under a given context.
type withContext struct {
	c   collectors.Collector
	ctx context.Context
}

func (w withContext) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	return w.c.Update(w.ctx, ch)
}

// The bus going away (dbus-daemon restarted) fails the scrapes while it is
// gone; once it is back, the next scrape connects again and succeeds.
func TestSystemdBusRestart(t *testing.T) {
	t.Parallel()
	bus := startBus(t)
	m := newFakeHost()
	serveManager(t, bus, m)
	c := systemdAt(t, bus)
	const slack = 10 * time.Second
	s := newSystemdScraper(t, c, slack)

	for i := range 3 {
		if ok, _, n := gather(t, s, slack); ok != 1 || n == 0 {
			t.Fatalf("scrape %d: success %v with %d series", i, ok, n)
		}
	}
	c.mu.Lock()
	first := c.conn
	c.mu.Unlock()
	if got := m.callers(); got != 1 {
		t.Fatalf("three scrapes came from %d connections, want 1 reused", got)
	}

	bus.stop()
	if ok, _, _ := gather(t, s, slack); ok != 0 {
		t.Errorf("scrape with the bus gone: success %v, want 0", ok)
	}
	bus.start()
	m2 := newFakeHost()
	serveManager(t, bus, m2)
	for i := range 2 {
		if ok, _, n := gather(t, s, slack); ok != 1 || n == 0 {
			t.Fatalf("scrape %d after the bus came back: success %v with %d series", i, ok, n)
		}
	}
	c.mu.Lock()
	second := c.conn
	c.mu.Unlock()
	if second == nil || second == first {
		t.Error("the connection was not made again")
	}
	if got := m2.callers(); got != 1 {
		t.Errorf("scrapes after the restart came from %d connections, want 1", got)
	}
}

// The bus closing between two scrapes, with the collector not yet aware of
// it, costs no failed scrape: Update connects again within the scrape.
func TestSystemdReconnectWithinScrape(t *testing.T) {
	t.Parallel()
	bus := startBus(t)
	m := newFakeHost()
	serveManager(t, bus, m)
	c := systemdAt(t, bus)
	if _, err := collectortest.Exposition(t, c); err != nil {
		t.Fatal(err)
	}
	bus.stop()
	bus.start()
	serveManager(t, bus, newFakeHost())
	out, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatalf("scrape after a bus restart: %v", err)
	}
	if !strings.Contains(string(out), `node_systemd_unit_state{name="nginx.service",state="failed",type="forking"} 1`) {
		t.Errorf("scrape after a bus restart lacks the failed unit:\n%s", out)
	}
}

// No bus socket at all (a host without D-Bus, or a container without the
// host's socket): no data, not a failure.
func TestSystemdNoBus(t *testing.T) {
	t.Parallel()
	env := collectortest.TempEnv(t, t.TempDir())
	c := collectortest.MustBuild(t, "systemd", env, "--collector.systemd.bus-address=unix:path="+filepath.Join(t.TempDir(), "none"))
	_, err := collectortest.Exposition(t, c)
	if !errors.Is(err, collectors.ErrNoData) {
		t.Errorf("Update without a bus: %v, want ErrNoData", err)
	}
}

// A manager that is not on the bus is an error naming the bus.
func TestSystemdNoManager(t *testing.T) {
	t.Parallel()
	bus := startBus(t)
	c := systemdAt(t, bus)
	_, err := collectortest.Exposition(t, c)
	if err == nil || errors.Is(err, collectors.ErrNoData) || !strings.Contains(err.Error(), bus.address) {
		t.Errorf("Update without a manager on the bus: %v, want an error naming %s", err, bus.address)
	}
}

func TestSystemdBadFlags(t *testing.T) {
	t.Parallel()
	env := collectortest.TempEnv(t, t.TempDir())
	for _, flag := range []string{"--collector.systemd.unit-include=(", "--collector.systemd.unit-exclude=["} {
		if _, err := collectortest.Build(t, "systemd", env, flag); err == nil || !strings.Contains(err.Error(), strings.SplitN(flag[2:], "=", 2)[0]) {
			t.Errorf("%s: %v, want an error naming the flag", flag, err)
		}
	}
}

// TestNodeExporterConformanceSystemd runs node_exporter's systemd
// collector against the same fake manager (it finds the bus through
// DBUS_SYSTEM_BUS_ADDRESS) and compares every family.
func TestNodeExporterConformanceSystemd(t *testing.T) {
	bin := collectortest.NodeExporterBin(t)
	for _, args := range [][]string{
		// nodeagent's defaults, which differ from node_exporter's in
		// serving restart counts: node_exporter is given the flag.
		{"--collector.systemd.enable-restarts-metrics"},
		{"--no-collector.systemd.enable-restarts-metrics"},
		{"--collector.systemd.enable-restarts-metrics", "--collector.systemd.enable-start-time-metrics", "--collector.systemd.enable-task-metrics"},
		{"--collector.systemd.enable-restarts-metrics", `--collector.systemd.unit-include=.+\.(service|mount)`, `--collector.systemd.unit-exclude=(cron|backup)\.service`},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			bus := startBus(t)
			m := newFakeHost()
			serveManager(t, bus, m)
			t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
			theirs := collectortest.RunNodeExporter(t, bin, collectortest.Case{Collector: "systemd", Dir: t.TempDir(), Args: args})
			out, err := collectortest.Exposition(t, systemdAt(t, bus, args...))
			if err != nil {
				t.Fatal(err)
			}
			tally := collectortest.CompareFamilies(t, collectortest.Parse(t, out), theirs, &collectortest.Rules{})
			if tally.Series == 0 {
				t.Fatalf("compared no series: %s", tally)
			}
			t.Log(tally)
		})
	}
}

// manyUnits is a larger host: 200 services, 50 sockets, 50 timers.
func manyUnits() []fakeUnit {
	var out []fakeUnit
	for i := range 200 {
		out = append(out, fakeUnit{name: fmt.Sprintf("svc-%03d.service", i), load: "loaded", active: "active", props: map[string]map[string]any{
			"Service": {"Type": "simple", "NRestarts": uint32(i % 3), "TasksCurrent": uint64(2), "TasksMax": uint64(4915)},
			"Unit":    {"ActiveEnterTimestamp": uint64(1699990000000000)},
		}})
	}
	for i := range 50 {
		out = append(out,
			fakeUnit{name: fmt.Sprintf("sock-%02d.socket", i), load: "loaded", active: "active", props: map[string]map[string]any{
				"Socket": {"NAccepted": uint32(i), "NConnections": uint32(1), "NRefused": uint32(0)},
			}},
			fakeUnit{name: fmt.Sprintf("job-%02d.timer", i), load: "loaded", active: "active", props: map[string]map[string]any{
				"Timer": {"LastTriggerUSec": uint64(1699996400000000)},
			}})
	}
	return out
}

// BenchmarkSystemd measures one scrape of the systemd collector with its
// default flags over a fake manager with 300 units, side by side with
// node_exporter 1.12.1's systemd collector over the same manager (its own
// node_scrape_collector_duration_seconds, reported as collector-ns/op;
// NODE_EXPORTER_BIN must be set). Both go through the same dbus-daemon.
func BenchmarkSystemd(b *testing.B) {
	bus := startBus(b)
	m := newFakeHost()
	m.units = manyUnits()
	serveManager(b, bus, m)
	b.Run("nodeagent", func(b *testing.B) {
		c := systemdAt(b, bus)
		collectortest.BenchUpdate(b, c)
	})
	b.Run("node_exporter", func(b *testing.B) {
		bin := os.Getenv("NODE_EXPORTER_BIN")
		if bin == "" {
			b.Skip("NODE_EXPORTER_BIN is not set")
		}
		b.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
		var total float64
		for range b.N {
			mfs := collectortest.ScrapeNodeExporterAll(b, bin, []string{"--web.listen-address=127.0.0.1:0", "--collector.disable-defaults", "--collector.systemd"})
			for _, s := range mfs["node_scrape_collector_duration_seconds"].GetMetric() {
				total += s.GetGauge().GetValue()
			}
		}
		b.ReportMetric(total*1e9/float64(b.N), "collector-ns/op")
	})
}

// A host found without a bus socket is not dialled again every scrape,
// only once systemdNoBusRecheck has passed: a bus that appears later is
// reached then.
func TestSystemdNoBusRecheck(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "bus")
	env := collectortest.TempEnv(t, t.TempDir())
	c := collectortest.MustBuild(t, "systemd", env, "--collector.systemd.bus-address=unix:path="+sock).(*systemdCollector)
	now := time.Now()
	c.now = func() time.Time { return now }
	if _, err := collectortest.Exposition(t, c); !errors.Is(err, collectors.ErrNoData) {
		t.Fatalf("without a bus: %v, want ErrNoData", err)
	}
	// A socket appears that accepts and hangs up: a dial reaches it.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dialled := make(chan struct{}, 10)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Close()
			dialled <- struct{}{}
		}
	}()
	now = now.Add(systemdNoBusRecheck / 2)
	if _, err := collectortest.Exposition(t, c); !errors.Is(err, collectors.ErrNoData) {
		t.Errorf("within the recheck interval: %v, want ErrNoData", err)
	}
	select {
	case <-dialled:
		t.Error("the bus was dialled within the recheck interval")
	case <-time.After(100 * time.Millisecond):
	}
	now = now.Add(systemdNoBusRecheck)
	if _, err := collectortest.Exposition(t, c); err == nil || errors.Is(err, collectors.ErrNoData) {
		t.Errorf("after the recheck interval, a bus that hangs up: %v, want an error", err)
	}
	select {
	case <-dialled:
	case <-time.After(5 * time.Second):
		t.Error("the bus was not dialled after the recheck interval")
	}
}
