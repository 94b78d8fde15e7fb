package network

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/collectors/internal/descs"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// Golden cases: testdata/netstat (good, fields, no-ipv6, malformed).

// netstatCounters maps protocol → counter → value.
type netstatCounters map[string]map[string]float64

// collectNetstat gathers what parse passes to its callback, a protocol's
// header starting it afresh.
func collectNetstat(parse func([]byte, func(proto, name []byte, v float64)) error, in string) (netstatCounters, error) {
	out := netstatCounters{}
	err := parse([]byte(in), func(proto, name []byte, v float64) {
		if name == nil || out[string(proto)] == nil {
			out[string(proto)] = map[string]float64{}
		}
		if name != nil {
			out[string(proto)][string(name)] = v
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func TestParseNetstat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     netstatCounters
		wantErr  string
	}{
		{"pairs", "Tcp: MaxConn ActiveOpens\nTcp: -1 646\nUdp: InDatagrams\nUdp: 69\n",
			netstatCounters{"Tcp": {"MaxConn": -1, "ActiveOpens": 646}, "Udp": {"InDatagrams": 69}}, ""},
		{"repeated protocol: last wins", "Tcp: A B\nTcp: 1 2\nTcp: C\nTcp: 3\n", netstatCounters{"Tcp": {"C": 3}}, ""},
		{"empty", "", netstatCounters{}, ""},
		{"count mismatch", "Tcp: A B\nTcp: 1\n", nil, "Tcp has 2 counter names but 1 values"},
		{"no values line", "Tcp: A B\n", nil, `header "Tcp:" has no line of values`},
		{"other protocol on values line", "Tcp: A\nUdp: 1\n", nil, `want "Tcp: ..." twice`},
		{"no colon", "Tcp A\nTcp 1\n", nil, `want "Tcp ..." twice`},
		{"empty header", "\nTcp: 1\n", nil, "empty header line"},
		{"bad value", "Tcp: A\nTcp: x\n", nil, "line 2: Tcp A"},
		{"bad name", "Tcp: A-B\nTcp: 1\n", nil, `Tcp counter name "A-B"`},
	} {
		got, err := collectNetstat(parseNetstat, tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: want an error containing %q, got %v", tc.name, tc.wantErr, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestParseSNMP6(t *testing.T) {
	t.Parallel()
	got, err := collectNetstat(parseSNMP6, "Ip6InReceives \t4125\nIcmp6InType143 3\nUdpLite6InErrors 0\nnosix 1\nalone\n\n")
	if err != nil {
		t.Fatal(err)
	}
	want := netstatCounters{"Ip6": {"InReceives": 4125}, "Icmp6": {"InType143": 3}, "UdpLite6": {"InErrors": 0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := collectNetstat(parseSNMP6, "Ip6InReceives many\n"); err == nil || !strings.Contains(err.Error(), "line 1: Ip6InReceives") {
		t.Errorf("want an error naming the line and counter, got %v", err)
	}
}

// fuzzNetstatCounters checks what both parsers promise: names usable in a
// metric name.
func fuzzNetstatCounters(t *testing.T, got netstatCounters) {
	for proto, counters := range got {
		if !descs.IsMetricNamePart([]byte(proto)) {
			t.Errorf("protocol %q cannot be part of a metric name", proto)
		}
		for name := range counters {
			if !descs.IsMetricNamePart([]byte(name)) {
				t.Errorf("counter %q cannot be part of a metric name", name)
			}
		}
	}
}

func FuzzParseNetstat(f *testing.F) {
	f.Add([]byte("Tcp: RtoAlgorithm RtoMin RtoMax MaxConn\nTcp: 1 200 120000 -1\nIpExt: InOctets\nIpExt: 114154405\n"))
	f.Add([]byte(":\n:\n"))
	f.Add([]byte("A: b\nA: 1\nB:\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, err := collectNetstat(parseNetstat, string(in)); err == nil {
			fuzzNetstatCounters(t, got)
		}
	})
}

func FuzzParseSNMP6(f *testing.F) {
	f.Add([]byte("Ip6InReceives 4125\nIcmp6InMsgs 0\nUdp6InDatagrams 56\n"))
	f.Add([]byte("6 1\n66 2\nx6 y\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, err := collectNetstat(parseSNMP6, string(in)); err == nil {
			fuzzNetstatCounters(t, got)
		}
	})
}

// A protocol read again replaces what was read of it before, in one file
// (a second header) and across files (snmp after netstat), and a counter
// repeated in snmp6 serves its last value: one series each, whatever the
// files hold, over several scrapes.
func TestNetstatRepeatedProtocols(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	collectortest.WriteFiles(t, root, map[string]string{
		"proc/net/netstat": "TcpExt: A B\nTcpExt: 1 2\nTcpExt: C\nTcpExt: 3\nIpExt: InOctets\nIpExt: 5\n",
		"proc/net/snmp":    "IpExt: OutOctets\nIpExt: 6\nUdp: InErrors\nUdp: 7\n",
		"proc/net/snmp6":   "Ip6InOctets 8\nUdp6InErrors 9\nIp6InOctets 10\n",
	})
	c, err := newNetstatCollector(collectortest.TempEnv(t, root), netstatConfig{fields: ".*"})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"node_netstat_Ip6_InOctets 10", "node_netstat_IpExt_OutOctets 6", "node_netstat_TcpExt_C 3",
		"node_netstat_Udp6_InErrors 9", "node_netstat_Udp_InErrors 7",
	}, "\n")
	for scrape := range 3 {
		got, err := collectortest.Exposition(t, c)
		if err != nil {
			t.Fatal(err)
		}
		var series []string
		for line := range strings.Lines(string(got)) {
			if !strings.HasPrefix(line, "#") {
				series = append(series, strings.TrimSpace(line))
			}
		}
		if diff := cmp.Diff(want, strings.Join(series, "\n")); diff != "" {
			t.Errorf("scrape %d (-want +got):\n%s", scrape, diff)
		}
	}
}
