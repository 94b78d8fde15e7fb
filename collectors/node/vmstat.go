package node

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/descs"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

// defaultVMStatFields is node_exporter 1.12's default field filter.
const defaultVMStatFields = `^(oom_kill|pgpg|pswp|pg.*fault).*`

// vmstatConfig holds the vmstat collector's flags.
type vmstatConfig struct {
	fields string
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "vmstat",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &vmstatConfig{}
			app.Flag("collector.vmstat.fields", "Regexp of fields to return for vmstat collector.").
				Default(defaultVMStatFields).StringVar(&cfg.fields)
			return func(env collectors.Env) (collectors.Collector, error) { return newVMStatCollector(env, *cfg) }
		},
	})
}

// vmstatCollector serves /proc/vmstat fields matching
// --collector.vmstat.fields as untyped node_vmstat_<field> series, as
// node_exporter does. With the default filter these are node_vmstat_oom_kill,
// node_vmstat_pgpgin, node_vmstat_pgpgout, node_vmstat_pswpin,
// node_vmstat_pswpout, node_vmstat_pgfault and node_vmstat_pgmajfault.
// procfs has no /proc/vmstat reader, hence parseVMStat.
type vmstatCollector struct {
	file   *hostfile.ProcFile // kept open between scrapes
	fields *regexp.Regexp
	mu     sync.Mutex
	served map[string]*family // by field; nil when --collector.vmstat.fields leaves it out
}

func newVMStatCollector(env collectors.Env, cfg vmstatConfig) (*vmstatCollector, error) {
	re, err := regexp.Compile(cfg.fields)
	if err != nil {
		return nil, fmt.Errorf("--collector.vmstat.fields: %w", err)
	}
	return &vmstatCollector{file: hostfile.NewProcFile(filepath.Join(env.Paths.ProcFS, "vmstat")), fields: re}, nil
}

func (c *vmstatCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the fields as compact untyped families, one series
// each.
func (c *vmstatCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	b, err := c.file.Read()
	if err != nil {
		return nil, err
	}
	fields, err := parseVMStat(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", c.file.Path(), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.served == nil {
		c.served = map[string]*family{}
	}
	var out collectors.CompactBuilder
	for _, f := range fields {
		fam, ok := c.served[f.name]
		if !ok {
			if c.fields.MatchString(f.name) {
				fam = &family{"node_vmstat_" + f.name, fmt.Sprintf("/proc/vmstat information field %s.", f.name)}
			}
			c.served[f.name] = fam
		}
		if fam != nil {
			out.Add(fam.name, fam.help, dto.MetricType_UNTYPED, nil, f.value)
		}
	}
	return out.Families(), nil
}

// vmstatField is one "name value" line of /proc/vmstat.
type vmstatField struct {
	name  string
	value float64
}

// parseVMStat parses /proc/vmstat: one "name value" pair per line, names
// of [A-Za-z0-9_]. Sample:
//
//	nr_free_pages 289425
//	pgpgin 1028722
//	pgfault 93722398
//	oom_kill 0
//
// Any other line is an error naming it, as node_exporter fails the scrape
// on one too.
func parseVMStat(r io.Reader) ([]vmstatField, error) {
	var out []vmstatField
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		parts := bytes.Fields(sc.Bytes())
		if len(parts) == 0 {
			continue
		}
		if len(parts) != 2 || !descs.IsMetricNamePart(parts[0]) {
			return nil, fmt.Errorf("line %d: want \"name value\", got %q", n, sc.Text())
		}
		v, err := strconv.ParseFloat(string(parts[1]), 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: field %s: %w", n, parts[0], err)
		}
		out = append(out, vmstatField{string(parts[0]), v})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
