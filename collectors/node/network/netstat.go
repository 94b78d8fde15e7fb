package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
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
	protos               map[string]*netstatProto // by protocol, every one ever read
	values               []netstatValue           // this scrape's, reused
	block                int                      // numbers the protocol blocks read
	scrape               int                      // numbers the scrapes
}

// netstatProto is one protocol's counters, kept between scrapes so that a
// scrape looks them up without building their names.
type netstatProto struct {
	counters map[string]*netstatCounter // by counter; nil when --collector.netstat.fields leaves it out
	block    int                        // the block of this scrape its values come from
	file     int                        // the file that block was read in
}

// netstatValue is one counter read this scrape.
type netstatValue struct {
	proto   *netstatProto
	counter *netstatCounter
	block   int
	v       float64
}

// family is the name and help of a compact family.
type family struct{ name, help string }

// netstatCounter is a served counter's family.
type netstatCounter struct {
	name, help string
	served     int // the last scrape that served it
}

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
		protos:  map[string]*netstatProto{},
	}, nil
}

func (c *netstatCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the counters as compact families, one series each.
// The files are parsed in their kept descriptors' buffers, and a counter
// seen before costs map lookups, no allocation.
//
// As in node_exporter, a protocol read again (a second header of it in
// one file, or the same protocol in a later file) replaces what was read
// of it before; the kernel's files share no protocol.
func (c *netstatCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.values = c.values[:0]
	for file, f := range []struct {
		file     *hostfile.ProcFile
		parse    func([]byte, func(proto, name []byte, v float64)) error
		optional bool
	}{
		{c.netstat, parseNetstat, false},
		{c.snmp, parseNetstat, false},
		// Absent when IPv6 is disabled.
		{c.snmp6, parseSNMP6, true},
	} {
		err := f.file.ReadFunc(func(b []byte) error {
			if err := f.parse(b, func(proto, name []byte, v float64) { c.add(file, proto, name, v) }); err != nil {
				return fmt.Errorf("reading %s: %w", f.file.Path(), err)
			}
			return nil
		})
		if f.optional && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
	}
	c.scrape++
	var b collectors.CompactBuilder
	// Backwards, so that of a counter read twice in its protocol's last
	// block the last value is served.
	for _, v := range slices.Backward(c.values) {
		if v.counter != nil && v.block == v.proto.block && v.counter.served != c.scrape {
			v.counter.served = c.scrape
			// node_exporter serves these as untyped.
			b.Add(v.counter.name, v.counter.help, dto.MetricType_UNTYPED, nil, v.v)
		}
	}
	return b.Families(), nil
}

// add records one counter of file (its index in UpdateCompact's list). A
// nil name starts a block of proto (a header of parseNetstat's); without
// one (parseSNMP6) a protocol's block is the file.
func (c *netstatCollector) add(file int, proto, name []byte, v float64) {
	p := c.protos[string(proto)]
	if p == nil {
		p = &netstatProto{counters: map[string]*netstatCounter{}, file: -1}
		c.protos[string(proto)] = p
	}
	// A block number is only a tag of this scrape's values: a protocol
	// read in the same file as last scrape may keep its number.
	if name == nil || p.file != file {
		c.block++
		p.block, p.file = c.block, file
	}
	if name == nil {
		return
	}
	counter, ok := p.counters[string(name)]
	if !ok {
		key := string(proto) + "_" + string(name)
		if c.fields.MatchString(key) {
			counter = &netstatCounter{name: "node_netstat_" + key, help: fmt.Sprintf("Statistic %s.", string(proto)+string(name))}
		}
		p.counters[string(name)] = counter
	}
	c.values = append(c.values, netstatValue{proto: p, counter: counter, block: p.block, v: v})
}

// parseNetstat parses /proc/net/netstat or /proc/net/snmp: pairs of lines,
// a header naming a protocol's counters and a line of their values.
// Sample:
//
//	Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens
//	Tcp: 1 200 120000 -1 646
//	Udp: InDatagrams NoPorts InErrors
//	Udp: 69 0 0
//
// It calls each with a nil name where a protocol's pair begins, then for
// each of its counters; proto and name are valid only during the call.
// On an error, each has been called for the pairs before it.
func parseNetstat(b []byte, each func(proto, name []byte, v float64)) error {
	var nameBuf, valueBuf [64][]byte
	for n := 1; len(b) > 0; n += 2 {
		var header, values []byte
		header, b, _ = bytes.Cut(b, []byte{'\n'})
		names := hostfile.Fields(header, nameBuf[:0])
		if len(names) == 0 {
			return fmt.Errorf("line %d: empty header line", n)
		}
		if len(b) == 0 {
			return fmt.Errorf("line %d: header %q has no line of values", n, names[0])
		}
		values, b, _ = bytes.Cut(b, []byte{'\n'})
		vals := hostfile.Fields(values, valueBuf[:0])
		proto, ok := bytes.CutSuffix(names[0], []byte(":"))
		if !ok || len(vals) == 0 || !bytes.Equal(vals[0], names[0]) {
			first := []byte{}
			if len(vals) > 0 {
				first = vals[0]
			}
			return fmt.Errorf("lines %d-%d: want \"%s ...\" twice, got %q and %q", n, n+1, names[0], names[0], first)
		}
		if len(names) != len(vals) {
			return fmt.Errorf("lines %d-%d: %s has %d counter names but %d values", n, n+1, proto, len(names)-1, len(vals)-1)
		}
		if !descs.IsMetricNamePart(proto) {
			return fmt.Errorf("line %d: protocol %q", n, proto)
		}
		for i := 1; i < len(names); i++ {
			if !descs.IsMetricNamePart(names[i]) {
				return fmt.Errorf("line %d: %s counter name %q", n, proto, names[i])
			}
		}
		each(proto, nil, 0)
		for i := 1; i < len(names); i++ {
			v, err := hostfile.ParseFloat(vals[i])
			if err != nil {
				return fmt.Errorf("line %d: %s %s: %w", n+1, proto, names[i], err)
			}
			each(proto, names[i], v)
		}
	}
	return nil
}

// parseSNMP6 parses /proc/net/snmp6: one "<Protocol>6<Counter> value"
// per line; the protocol is the name up to its first "6". Lines of fewer
// than two fields or without a "6" are skipped, as node_exporter does.
// Sample:
//
//	Ip6InReceives                   	4125
//	Icmp6InMsgs                     	0
//	Udp6InDatagrams                 	56
//
// It calls each for every counter; proto and name are valid only during
// the call. On an error, each has been called for the lines before it.
func parseSNMP6(b []byte, each func(proto, name []byte, v float64)) error {
	var buf [4][]byte
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		f := hostfile.Fields(line, buf[:0])
		if len(f) < 2 {
			continue
		}
		i := bytes.IndexByte(f[0], '6')
		if i < 0 {
			continue
		}
		proto, name := f[0][:i+1], f[0][i+1:]
		if !descs.IsMetricNamePart(proto) || !descs.IsMetricNamePart(name) {
			return fmt.Errorf("line %d: counter name %q", n, f[0])
		}
		v, err := hostfile.ParseFloat(f[1])
		if err != nil {
			return fmt.Errorf("line %d: %s: %w", n, f[0], err)
		}
		each(proto, name, v)
	}
	return nil
}
