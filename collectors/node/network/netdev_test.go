package network

import (
	"errors"
	"net"
	"strings"
	"testing"

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

// --collector.netdev.netlink is accepted so node_exporter command lines
// keep working; asking for netlink warns that /proc/net/dev is read.
func TestNetdevNetlinkFlag(t *testing.T) {
	t.Parallel()
	env := collectortest.TempEnv(t, t.TempDir())
	logs := &testlog.Buffer{}
	env.Logger = logs.Logger()
	if _, err := newNetdevCollector(env, netdevConfig{devices: &devicefilter.Flags{}, netlink: true}); err != nil {
		t.Fatal(err)
	}
	if !logs.Contains("--collector.netdev.netlink is not supported") {
		t.Errorf("no warning about --collector.netdev.netlink:\n%s", logs.String())
	}
}
