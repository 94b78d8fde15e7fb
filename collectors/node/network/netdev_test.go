package network

import (
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/jsimonetti/rtnetlink/v2"

	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/collectors/internal/devicefilter"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// Golden cases: testdata/netdev (good, kubernetes-defaults, detailed,
// ifalias, malformed).

func TestDefaultNetDeviceExclude(t *testing.T) {
	t.Parallel()
	f, err := (&devicefilter.Flags{Exclude: defaultNetDeviceExclude}).Build("x", "y")
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"veth3f2a1b9", "cali1a2b3c4d5e6", "cilium_host", "cilium_vxlan", "lxc9e8d7c6b5a4", "lxc_health",
		"flannel.1", "cni0", "tunl0"} {
		if !f.Ignored(dev) {
			t.Errorf("%s is served; the Kubernetes default should exclude it", dev)
		}
	}
	for _, dev := range []string{"lo", "eth0", "ens5", "enp3s0f1", "bond0", "docker0", "vxlan.calico", "wg0", "br-ex"} {
		if f.Ignored(dev) {
			t.Errorf("%s is excluded; the Kubernetes default should serve it", dev)
		}
	}
}

func TestNetdevAddressInfo(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	collectortest.WriteFiles(t, root, map[string]string{"proc/net/dev": "h1\nh2\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"})
	c, err := newNetdevCollector(collectortest.TempEnv(t, root), netdevConfig{devices: &devicefilter.Flags{Exclude: defaultNetDeviceExclude}, addressInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	cidr := func(s string) net.Addr {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return n
	}
	c.addresses = func() ([]ifaceAddrs, error) {
		return []ifaceAddrs{
			{"lo", []net.Addr{cidr("127.0.0.1/8"), cidr("::1/128")}},
			{"eth0", []net.Addr{cidr("10.0.0.21/24"), cidr("fe80::1/64")}},
			{"cali1a2b3c4d5e6", []net.Addr{cidr("169.254.1.1/32")}},
		}, nil
	}
	lines, err := collectortest.SeriesLines(t, c, "node_network_address_info")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`node_network_address_info{address="10.0.0.21",device="eth0",netmask="24",scope="global"} 1`,
		`node_network_address_info{address="127.0.0.1",device="lo",netmask="8",scope="link-local"} 1`,
		`node_network_address_info{address="::1",device="lo",netmask="128",scope="link-local"} 1`,
		`node_network_address_info{address="fe80::1",device="eth0",netmask="64",scope="link-local"} 1`,
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	c.addresses = func() ([]ifaceAddrs, error) { return nil, errors.New("netlink: permission denied") }
	if _, err := collectortest.Exposition(t, c); err == nil || !strings.Contains(err.Error(), "listing network interfaces") {
		t.Errorf("want the interface listing error, got %v", err)
	}
}

func TestGuardParse(t *testing.T) {
	t.Parallel()
	v, err := hostfile.GuardParse("a file", func() (int, error) {
		var s []int
		return s[3], nil
	})
	if v != 0 || err == nil || !strings.Contains(err.Error(), "malformed input") {
		t.Errorf("got %v, %v; want 0 and a malformed-input error", v, err)
	}
	if v, err := hostfile.GuardParse("a file", func() (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Errorf("got %v, %v; want 7, nil", v, err)
	}
}

// TestRtnlLinksKeptAndReopened: the rtnetlink socket serves dump after
// dump; one that fails is closed and the next dump opens another.
func TestRtnlLinksKeptAndReopened(t *testing.T) {
	t.Parallel()
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) == 0 {
		t.Skipf("no interfaces: %v", err)
	}
	var r rtnlLinks
	t.Cleanup(func() {
		if r.conn != nil {
			_ = r.conn.Close()
		}
	})
	names := func() []string {
		t.Helper()
		links, err := r.list()
		if err != nil {
			t.Fatal(err)
		}
		var ns []string
		for _, l := range links {
			if l.Attributes != nil {
				ns = append(ns, l.Attributes.Name)
			}
		}
		return ns
	}
	first := names()
	kept := r.conn
	if again := names(); r.conn != kept || len(again) != len(first) {
		t.Fatalf("second dump: socket kept %v, %d links against %d", r.conn == kept, len(again), len(first))
	}
	if len(first) < len(ifs) {
		t.Errorf("%d links dumped, net.Interfaces lists %d", len(first), len(ifs))
	}

	_ = kept.Close() // as if the socket broke
	if _, err := r.list(); err == nil || r.conn != nil {
		t.Fatalf("a dump over a closed socket: err %v, socket kept %v", err, r.conn != nil)
	}
	if after := names(); len(after) != len(first) || r.conn == nil {
		t.Errorf("after a failure: %d links, socket %v", len(after), r.conn)
	}
}

// netlinkCounters takes IFLA_STATS64, falls back to the 32-bit IFLA_STATS,
// and skips links without either; foldLegacy then sums the detailed error
// counters into /proc/net/dev's columns, as node_exporter does.
func TestNetlinkCounters(t *testing.T) {
	t.Parallel()
	full := &rtnetlink.LinkStats64{
		RXPackets: 1, TXPackets: 2, RXBytes: 3, TXBytes: 4, RXErrors: 5, TXErrors: 6, RXDropped: 7, TXDropped: 8,
		Multicast: 9, Collisions: 10, RXLengthErrors: 11, RXOverErrors: 12, RXCRCErrors: 13, RXFrameErrors: 14,
		RXFIFOErrors: 15, RXMissedErrors: 16, TXAbortedErrors: 17, TXCarrierErrors: 18, TXFIFOErrors: 19,
		TXHeartbeatErrors: 20, TXWindowErrors: 21, RXCompressed: 22, TXCompressed: 23, RXNoHandler: 24,
	}
	links := []rtnetlink.LinkMessage{
		{Index: 1, Attributes: &rtnetlink.LinkAttributes{Name: "eth0", Stats64: full, Stats: &rtnetlink.LinkStats{RXPackets: 999}}},
		{Index: 2, Attributes: &rtnetlink.LinkAttributes{Name: "old0", Stats: &rtnetlink.LinkStats{RXBytes: 100, RXNoHandler: 3, Multicast: 4}}},
		{Index: 3, Attributes: &rtnetlink.LinkAttributes{Name: "nostats0"}},
		{Index: 4},
	}
	got := netlinkCounters(links, testlog.New(t))
	want := map[string]netdevCounters{
		"eth0": {
			"receive_packets": 1, "transmit_packets": 2, "receive_bytes": 3, "transmit_bytes": 4,
			"receive_errors": 5, "transmit_errors": 6, "receive_dropped": 7, "transmit_dropped": 8,
			"multicast": 9, "collisions": 10, "receive_length_errors": 11, "receive_over_errors": 12,
			"receive_crc_errors": 13, "receive_frame_errors": 14, "receive_fifo_errors": 15,
			"receive_missed_errors": 16, "transmit_aborted_errors": 17, "transmit_carrier_errors": 18,
			"transmit_fifo_errors": 19, "transmit_heartbeat_errors": 20, "transmit_window_errors": 21,
			"receive_compressed": 22, "transmit_compressed": 23, "receive_nohandler": 24,
		},
		"old0": {
			"receive_packets": 0, "transmit_packets": 0, "receive_bytes": 100, "transmit_bytes": 0,
			"receive_errors": 0, "transmit_errors": 0, "receive_dropped": 0, "transmit_dropped": 0,
			"multicast": 4, "collisions": 0, "receive_length_errors": 0, "receive_over_errors": 0,
			"receive_crc_errors": 0, "receive_frame_errors": 0, "receive_fifo_errors": 0,
			"receive_missed_errors": 0, "transmit_aborted_errors": 0, "transmit_carrier_errors": 0,
			"transmit_fifo_errors": 0, "transmit_heartbeat_errors": 0, "transmit_window_errors": 0,
			"receive_compressed": 0, "transmit_compressed": 0, "receive_nohandler": 3,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("netlink counters (-want +got):\n%s", diff)
	}
	for stat := range got["eth0"] {
		if _, ok := netdevFamilies[stat]; !ok {
			t.Errorf("statistic %s has no family", stat)
		}
	}

	foldLegacy(got["eth0"])
	wantLegacy := netdevCounters{
		"receive_packets": 1, "transmit_packets": 2, "receive_bytes": 3, "transmit_bytes": 4,
		"receive_errs": 5, "transmit_errs": 6,
		"receive_drop":      7 + 16,
		"transmit_drop":     8,
		"receive_multicast": 9, "transmit_colls": 10,
		"receive_frame":      14 + 11 + 12 + 13,
		"receive_fifo":       15,
		"transmit_carrier":   18 + 17 + 20 + 21,
		"transmit_fifo":      19,
		"receive_compressed": 22, "transmit_compressed": 23, "receive_nohandler": 24,
	}
	if diff := cmp.Diff(wantLegacy, got["eth0"]); diff != "" {
		t.Errorf("legacy counters (-want +got):\n%s", diff)
	}
	for stat := range wantLegacy {
		if _, ok := netdevFamilies[stat]; !ok {
			t.Errorf("statistic %s has no family", stat)
		}
	}
}

// On this host, netlink and /proc/net/dev report the same interfaces and,
// for what both have, the same families and labels; netlink adds
// receive_nohandler. Values move between the two reads and are not
// compared.
func TestNetdevNetlinkMatchesProc(t *testing.T) {
	t.Parallel()
	env := collectortest.HostEnv(t)
	for _, detailed := range []bool{false, true} {
		args := []string{}
		if detailed {
			args = append(args, "--collector.netdev.enable-detailed-metrics")
		}
		netlink, err := collectortest.Exposition(t, collectortest.MustBuild(t, "netdev", env, append(args, "--collector.netdev.device-exclude=")...))
		if err != nil {
			t.Fatalf("netlink: %v", err)
		}
		proc, err := collectortest.Exposition(t, collectortest.MustBuild(t, "netdev", env, append(args, "--collector.netdev.device-exclude=", "--no-collector.netdev.netlink")...))
		if err != nil {
			t.Fatalf("/proc/net/dev: %v", err)
		}
		seriesOf := func(b []byte) map[string]bool {
			out := map[string]bool{}
			for name, mf := range collectortest.Parse(t, b) {
				for k := range collectortest.Series(mf) {
					out[name+k] = true
				}
			}
			return out
		}
		n, p := seriesOf(netlink), seriesOf(proc)
		if len(p) == 0 {
			t.Fatal("/proc/net/dev has no interface")
		}
		compared := 0
		for k := range p {
			if !n[k] && (!detailed || !procOnlyDetailed(k)) {
				t.Errorf("detailed=%v: %s from /proc/net/dev, not from netlink", detailed, k)
			}
			compared++
		}
		for k := range n {
			if !p[k] && !strings.HasPrefix(k, "node_network_receive_nohandler_total") && (!detailed || !netlinkOnlyDetailed(k)) {
				t.Errorf("detailed=%v: %s from netlink, not from /proc/net/dev", detailed, k)
			}
		}
		t.Logf("detailed=%v: %d /proc/net/dev series, %d netlink series", detailed, len(p), len(n))
	}
}

// With --collector.netdev.enable-detailed-metrics node_exporter serves
// each source's own names: /proc/net/dev's summed columns, netlink's
// separate error counters.
func procOnlyDetailed(series string) bool {
	for _, f := range []string{"receive_fifo", "receive_frame", "receive_multicast", "transmit_fifo", "transmit_colls", "transmit_carrier"} {
		if strings.HasPrefix(series, "node_network_"+f+"_total{") {
			return true
		}
	}
	return false
}

func netlinkOnlyDetailed(series string) bool {
	name, _, _ := strings.Cut(series, "{")
	return strings.HasSuffix(name, "_errors_total") && !strings.HasPrefix(name, "node_network_receive_errors") && !strings.HasPrefix(name, "node_network_transmit_errors") ||
		name == "node_network_multicast_total" || name == "node_network_collisions_total"
}

// TestNodeExporterConformanceHostNetdev compares the netlink mode,
// node_exporter's default, with node_exporter on this machine: the same
// families, help, types and series; counters move between the two scrapes.
func TestNodeExporterConformanceHostNetdev(t *testing.T) {
	t.Parallel()
	volatile := regexp.MustCompile(`^node_network_.+_total$`)
	t.Run("legacy", func(t *testing.T) {
		t.Parallel()
		collectortest.CompareOnHost(t, "netdev", collectortest.HostComparison{
			Args: []string{"--collector.netdev.device-exclude=^$"}, Volatile: volatile})
	})
	t.Run("detailed", func(t *testing.T) {
		t.Parallel()
		collectortest.CompareOnHost(t, "netdev", collectortest.HostComparison{
			Args: []string{"--collector.netdev.device-exclude=^$", "--collector.netdev.enable-detailed-metrics"}, Volatile: volatile})
	})
}
