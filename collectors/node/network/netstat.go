package network

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/descs"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

// defaultNetstatFields is node_exporter 1.12's default field filter.
const defaultNetstatFields = `^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$`

// netstatConfig holds the netstat collector's flags.
type netstatConfig struct {
	fields string
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "netstat",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &netstatConfig{}
			app.Flag("collector.netstat.fields", "Regexp of fields to return for netstat collector.").
				Default(defaultNetstatFields).StringVar(&cfg.fields)
			return func(env collectors.Env) (collectors.Collector, error) { return newNetstatCollector(env, *cfg) }
		},
		KnownLintProblems: []collectors.LintException{
			collectors.Inherited(`node_netstat_.*`, "camelCase", "node_exporter names netstat series after the kernel's SNMP counter names"),
		},
	})
}

// netstatCollector serves the kernel's SNMP counters from
// <procfs>/net/netstat, <procfs>/net/snmp and <procfs>/net/snmp6 as untyped
// node_netstat_<Protocol>_<Counter> series (node_netstat_Tcp_InSegs,
// node_netstat_TcpExt_ListenDrops, node_netstat_Udp6_InDatagrams…), those
// matching --collector.netstat.fields, as node_exporter does. procfs parses
// these files only per process and into fixed structs that miss newer
// counters, hence parseNetstat and parseSNMP6.
type netstatCollector struct {
	// Kept open between scrapes (hostfile.ProcFile): read every scrape.
	netstat, snmp, snmp6 *hostfile.ProcFile
	fields               *regexp.Regexp
	mu                   sync.Mutex
	served               map[string]*family // by Protocol_Counter; nil when --collector.netstat.fields leaves it out
}

// family is the name and help of a compact family.
type family struct{ name, help string }

func newNetstatCollector(env collectors.Env, cfg netstatConfig) (*netstatCollector, error) {
	re, err := regexp.Compile(cfg.fields)
	if err != nil {
		return nil, fmt.Errorf("--collector.netstat.fields: %w", err)
	}
	net := filepath.Join(env.Paths.ProcFS, "net")
	return &netstatCollector{
		netstat: hostfile.NewProcFile(filepath.Join(net, "netstat")),
		snmp:    hostfile.NewProcFile(filepath.Join(net, "snmp")),
		snmp6:   hostfile.NewProcFile(filepath.Join(net, "snmp6")),
		fields:  re,
	}, nil
}

// netstatCounters maps protocol → counter → value.
type netstatCounters map[string]map[string]float64

func (c *netstatCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the counters as compact families, one series each.
func (c *netstatCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	all := netstatCounters{}
	for _, f := range []struct {
		file     *hostfile.ProcFile
		parse    func(io.Reader) (netstatCounters, error)
		optional bool
	}{
		{c.netstat, parseNetstat, false},
		{c.snmp, parseNetstat, false},
		// Absent when IPv6 is disabled.
		{c.snmp6, parseSNMP6, true},
	} {
		b, err := f.file.Read()
		if f.optional && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		counters, err := f.parse(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.file.Path(), err)
		}
		// The files share no protocol; were one repeated, the last wins,
		// as in node_exporter.
		maps.Copy(all, counters)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.served == nil {
		c.served = map[string]*family{}
	}
	var b collectors.CompactBuilder
	for proto, counters := range all {
		for name, v := range counters {
			key := proto + "_" + name
			f, ok := c.served[key]
			if !ok {
				if c.fields.MatchString(key) {
					f = &family{name: "node_netstat_" + key, help: fmt.Sprintf("Statistic %s.", proto+name)}
				}
				c.served[key] = f
			}
			if f != nil {
				// node_exporter serves these as untyped.
				b.Add(f.name, f.help, dto.MetricType_UNTYPED, nil, v)
			}
		}
	}
	return b.Families(), nil
}

// parseNetstat parses /proc/net/netstat or /proc/net/snmp: pairs of lines,
// a header naming a protocol's counters and a line of their values.
// Sample:
//
//	Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens
//	Tcp: 1 200 120000 -1 646
//	Udp: InDatagrams NoPorts InErrors
//	Udp: 69 0 0
func parseNetstat(r io.Reader) (netstatCounters, error) {
	out := netstatCounters{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n += 2 {
		names := strings.Fields(sc.Text())
		if len(names) == 0 {
			return nil, fmt.Errorf("line %d: empty header line", n)
		}
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("line %d: header %q has no line of values", n, names[0])
		}
		values := strings.Fields(sc.Text())
		proto, ok := strings.CutSuffix(names[0], ":")
		if !ok || len(values) == 0 || values[0] != names[0] {
			return nil, fmt.Errorf("lines %d-%d: want \"%s ...\" twice, got %q and %q", n, n+1, names[0], names[0], firstOr(values, ""))
		}
		if len(names) != len(values) {
			return nil, fmt.Errorf("lines %d-%d: %s has %d counter names but %d values", n, n+1, proto, len(names)-1, len(values)-1)
		}
		if !descs.IsMetricNamePart([]byte(proto)) {
			return nil, fmt.Errorf("line %d: protocol %q", n, proto)
		}
		counters := make(map[string]float64, len(names)-1)
		for i := 1; i < len(names); i++ {
			if !descs.IsMetricNamePart([]byte(names[i])) {
				return nil, fmt.Errorf("line %d: %s counter name %q", n, proto, names[i])
			}
			v, err := strconv.ParseFloat(values[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s %s: %w", n+1, proto, names[i], err)
			}
			counters[names[i]] = v
		}
		out[proto] = counters
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

// parseSNMP6 parses /proc/net/snmp6: one "<Protocol>6<Counter> value"
// per line; the protocol is the name up to its first "6". Lines of fewer
// than two fields or without a "6" are skipped, as node_exporter does.
// Sample:
//
//	Ip6InReceives                   	4125
//	Icmp6InMsgs                     	0
//	Udp6InDatagrams                 	56
func parseSNMP6(r io.Reader) (netstatCounters, error) {
	out := netstatCounters{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		i := strings.Index(f[0], "6")
		if i < 0 {
			continue
		}
		proto, name := f[0][:i+1], f[0][i+1:]
		if !descs.IsMetricNamePart([]byte(proto)) || !descs.IsMetricNamePart([]byte(name)) {
			return nil, fmt.Errorf("line %d: counter name %q", n, f[0])
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", n, f[0], err)
		}
		if out[proto] == nil {
			out[proto] = map[string]float64{}
		}
		out[proto][name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
