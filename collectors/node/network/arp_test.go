package network

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The /proc/net/arp cases (several devices, include and exclude filters,
// absent, malformed) are golden cases in testdata/arp; node_exporter reads
// the same files with --no-collector.arp.netlink. The netlink mode reads the
// kernel, so it is tested here.

// nlMsg builds one netlink message of the given type around payload.
func nlMsg(typ uint16, payload []byte) []byte {
	b := make([]byte, syscall.NLMSG_HDRLEN, syscall.NLMSG_HDRLEN+len(payload)+3)
	binary.NativeEndian.PutUint32(b[0:4], uint32(syscall.NLMSG_HDRLEN+len(payload)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	binary.NativeEndian.PutUint16(b[6:8], syscall.NLM_F_MULTI)
	b = append(b, payload...)
	for len(b)%syscall.NLMSG_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

// ndmsg builds an RTM_NEWNEIGH message with an NDA_DST attribute.
func ndmsg(family byte, ifindex int32, state uint16) []byte {
	p := make([]byte, sizeofNdmsg, sizeofNdmsg+8)
	p[0] = family
	binary.NativeEndian.PutUint32(p[4:8], uint32(ifindex))
	binary.NativeEndian.PutUint16(p[8:10], state)
	p[11] = 1                               // RTN_UNICAST
	attr := []byte{8, 0, 1, 0, 10, 0, 0, 1} // NDA_DST 10.0.0.1
	return nlMsg(syscall.RTM_NEWNEIGH, append(p, attr...))
}

func nlDone() []byte { return nlMsg(syscall.NLMSG_DONE, []byte{0, 0, 0, 0}) }

func nlError(errno syscall.Errno) []byte {
	p := make([]byte, 4+syscall.NLMSG_HDRLEN)
	binary.NativeEndian.PutUint32(p[0:4], uint32(-int32(errno)))
	return nlMsg(syscall.NLMSG_ERROR, p)
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

const (
	nudReachable = 0x02
	nudStale     = 0x04
	nudFailed    = 0x20
	nudPermanent = 0x80
)

func TestParseNeighbourDump(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []neighbour
		wantErr error
		errText string
	}{
		{
			name: "inet entries in every state but NOARP",
			in: concat(
				ndmsg(syscall.AF_INET, 2, nudReachable),
				ndmsg(syscall.AF_INET, 2, nudStale),
				ndmsg(syscall.AF_INET, 3, nudFailed),
				ndmsg(syscall.AF_INET, 3, nudPermanent),
				ndmsg(syscall.AF_INET, 1, nudNoARP),
				ndmsg(syscall.AF_INET6, 2, nudReachable),
				nlDone(),
			),
			want: []neighbour{{2, nudReachable}, {2, nudStale}, {3, nudFailed}, {3, nudPermanent}},
		},
		{
			name: "nothing after done counts",
			in:   concat(ndmsg(syscall.AF_INET, 2, nudReachable), nlDone(), ndmsg(syscall.AF_INET, 2, nudReachable)),
			want: []neighbour{{2, nudReachable}},
		},
		{name: "empty dump", in: nlDone()},
		{name: "kernel error", in: nlError(syscall.EPERM), wantErr: syscall.EPERM},
		{name: "acknowledgement", in: concat(nlError(0), nlDone())},
		{name: "truncated ndmsg", in: nlMsg(syscall.RTM_NEWNEIGH, []byte{2, 0, 0, 0}), errText: "truncated neighbour message"},
		{name: "length past the buffer", in: ndmsg(syscall.AF_INET, 2, nudReachable)[:20], errText: "malformed netlink message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseNeighbourDump(tc.in)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			case tc.errText != "":
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("error %v, want one containing %q", err, tc.errText)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(neighbour{})); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func FuzzParseNeighbourDump(f *testing.F) {
	f.Add(concat(ndmsg(syscall.AF_INET, 2, nudReachable), ndmsg(syscall.AF_INET, 1, nudNoARP), nlDone()))
	f.Add(nlError(syscall.EPERM))
	f.Add(nlMsg(syscall.RTM_NEWNEIGH, []byte{2}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseNeighbourDump(b)
		if err != nil {
			return
		}
		for _, nb := range got {
			if nb.state&nudNoARP != 0 {
				t.Errorf("NOARP entry returned: %+v", nb)
			}
		}
	})
}

func TestARPNetlinkCounts(t *testing.T) {
	t.Parallel()
	dump := concat(
		ndmsg(syscall.AF_INET, 2, nudReachable),
		ndmsg(syscall.AF_INET, 2, nudStale),
		ndmsg(syscall.AF_INET, 5, nudReachable),
		ndmsg(syscall.AF_INET, 9, nudReachable), // its interface is gone
		ndmsg(syscall.AF_INET, 1, nudNoARP),
		nlDone(),
	)
	var asked []int
	source := netlinkARP{
		dump: func() ([]byte, error) { return dump, nil },
		names: func(ifindexes []int) (map[int]string, error) {
			asked = append(asked, ifindexes...)
			all := map[int]string{1: "lo", 2: "eth0", 5: "cali51ba0c7d3e2", 7: "unused0"}
			names := map[int]string{}
			for _, i := range ifindexes {
				if n, ok := all[i]; ok {
					names[i] = n
				}
			}
			return names, nil
		},
	}
	c := &arpCollector{source: source, entries: newARPEntriesDesc()}
	got, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	want := `# HELP node_arp_entries ARP entries by device
# TYPE node_arp_entries gauge
node_arp_entries{device="cali51ba0c7d3e2"} 1
node_arp_entries{device="eth0"} 2
`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
	// Only the interfaces of counted entries are named, each once.
	slices.Sort(asked)
	if diff := cmp.Diff([]int{2, 5, 9}, asked); diff != "" {
		t.Errorf("interfaces named (-want +got):\n%s", diff)
	}

	source.names = func([]int) (map[int]string, error) { return nil, syscall.EPERM }
	c.source = source
	if _, err := collectortest.Exposition(t, c); !errors.Is(err, syscall.EPERM) {
		t.Errorf("want the naming's error, got %v", err)
	}

	source.dump = func() ([]byte, error) { return nil, syscall.EACCES }
	c.source = source
	if _, err := collectortest.Exposition(t, c); !errors.Is(err, syscall.EACCES) || !strings.Contains(err.Error(), "RTM_GETNEIGH") {
		t.Errorf("want the dump's error naming RTM_GETNEIGH, got %v", err)
	}
}

func TestARPBadPatternIsAStartupError(t *testing.T) {
	t.Parallel()
	_, err := collectortest.BuildFixture(t, "arp", "arp/good", "--collector.arp.device-exclude=^(cali")
	if err == nil || !strings.Contains(err.Error(), "--collector.arp.device-exclude") {
		t.Fatalf("want an error naming the flag, got %v", err)
	}
}

// TestInterfaceNamesOnHost names this machine's interfaces with
// SIOCGIFNAME as net.Interfaces names them, and leaves out an index that
// names no interface.
func TestInterfaceNamesOnHost(t *testing.T) {
	t.Parallel()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Skipf("no interfaces: %v", err)
	}
	want := map[int]string{}
	var indexes []int
	for _, i := range ifs {
		want[i.Index] = i.Name
		indexes = append(indexes, i.Index)
	}
	got, err := interfaceNames(append(indexes, math.MaxInt32))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("-net.Interfaces +SIOCGIFNAME:\n%s", diff)
	}
}

// TestARPNetlinkMatchesProcOnHost reads this machine's neighbour table both
// ways: the two modes must count the same entries.
func TestARPNetlinkMatchesProcOnHost(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/net/arp"); err != nil {
		t.Skipf("no /proc/net/arp: %v", err)
	}
	env := collectortest.HostEnv(t)
	netlink := collectortest.MustBuild(t, "arp", env)
	proc := collectortest.MustBuild(t, "arp", env, "--no-collector.arp.netlink")
	// The table may change between the two reads; a few tries settle it.
	var diff string
	for range 3 {
		a, err := collectortest.Exposition(t, netlink)
		if err != nil {
			t.Fatalf("netlink: %v", err)
		}
		b, err := collectortest.Exposition(t, proc)
		if err != nil {
			t.Fatalf("/proc/net/arp: %v", err)
		}
		if diff = cmp.Diff(string(b), string(a)); diff == "" {
			return
		}
	}
	t.Errorf("netlink and /proc/net/arp disagree (-proc +netlink):\n%s", diff)
}

// TestNodeExporterConformanceHostARP compares the netlink mode, node_exporter's
// default, with node_exporter on this machine.
func TestNodeExporterConformanceHostARP(t *testing.T) {
	t.Parallel()
	collectortest.CompareOnHost(t, "arp", collectortest.HostComparison{})
}
