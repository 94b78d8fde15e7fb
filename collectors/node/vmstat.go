package node

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
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
// each, parsed in the kept descriptor's buffer.
func (c *vmstatCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.served == nil {
		c.served = map[string]*family{}
	}
	var out collectors.CompactBuilder
	err := c.file.ReadFunc(func(b []byte) error {
		err := parseVMStat(b, func(name []byte, v float64) {
			fam, ok := c.served[string(name)] // no allocation for a known field
			if !ok {
				field := string(name)
				if c.fields.MatchString(field) {
					fam = &family{"node_vmstat_" + field, fmt.Sprintf("/proc/vmstat information field %s.", field)}
				}
				c.served[field] = fam
			}
			if fam != nil {
				out.Add(fam.name, fam.help, dto.MetricType_UNTYPED, nil, v)
			}
		})
		if err != nil {
			return fmt.Errorf("reading %s: %w", c.file.Path(), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out.Families(), nil
}

// parseVMStat parses /proc/vmstat, calling each for every "name value"
// line (name is valid only during the call); names are of [A-Za-z0-9_].
// Sample:
//
//	nr_free_pages 289425
//	pgpgin 1028722
//	pgfault 93722398
//	oom_kill 0
//
// Any other line is an error naming it, as node_exporter fails the scrape
// on one too; each has been called for the lines before it.
func parseVMStat(b []byte, each func(name []byte, v float64)) error {
	var buf [3][]byte
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		parts := hostfile.Fields(line, buf[:0])
		if len(parts) == 0 {
			continue
		}
		if len(parts) != 2 || !descs.IsMetricNamePart(parts[0]) {
			return fmt.Errorf("line %d: want \"name value\", got %q", n, line)
		}
		v, err := hostfile.ParseFloat(parts[1])
		if err != nil {
			return fmt.Errorf("line %d: field %s: %w", n, parts[0], err)
		}
		each(parts[0], v)
	}
	return nil
}
