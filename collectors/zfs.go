package collectors

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register(Registration{
		Name:           "zfs",
		Layer:          LayerNode,
		DefaultEnabled: true,
		Setup: func(FlagApp) Factory {
			return func(env Env) (Collector, error) { return newZFSCollector(env), nil }
		},
		KnownLintProblems: []LintException{
			inherited(`node_zfs_.*`, "", "node_exporter names every ZFS family after the kernel module's kstat (zfetchstats max_completion_us and the like)"),
		},
	})
}

// zfsCollector serves the OpenZFS kstats of /proc/spl/kstat/zfs as
// node_exporter does. procfs has no reader for them, so the kstat formats
// are parsed here.
//
// Every kstat becomes its own untyped family, named by node_exporter's
// scheme (the names come from the kernel module and cannot be written out
// here):
//
//	<file> of zfsKstatFiles, line <name> -> node_<subsystem>_<name>, help kstat.zfs.misc.<file>.<name>
//	<pool>/io, column <name>             -> node_zfs_zpool_<name>{zpool}, help kstat.zfs.misc.io.<name>
//	<pool>/objset-*, line <name>         -> node_zfs_zpool_dataset_<name>{zpool,dataset}, help kstat.zfs.misc.objset.<name>
//	<pool>/state                         -> node_zfs_zpool_state{zpool,state} (a gauge)
//
// where "-" in a kstat name becomes "_".
type zfsCollector struct {
	base   string // <procfs>/spl/kstat/zfs
	logger *slog.Logger
	descs  descCache
	state  *prometheus.Desc
}

// zfsKstatFiles maps node_exporter's subsystem names to the kstat files
// below spl/kstat/zfs. Files a module version lacks are skipped.
var zfsKstatFiles = []struct{ subsystem, file string }{
	{"zfs_abd", "abdstats"},
	{"zfs_arc", "arcstats"},
	{"zfs_dbuf", "dbufstats"},
	{"zfs_dmu_tx", "dmu_tx"},
	{"zfs_dnode", "dnodestats"},
	{"zfs_fm", "fm"},
	{"zfs_vdev_cache", "vdev_cache_stats"}, // removed in OpenZFS 2.2
	{"zfs_vdev_mirror", "vdev_mirror_stats"},
	{"zfs_xuio", "xuio_stats"}, // ZFS on Linux before 0.8
	{"zfs_zfetch", "zfetchstats"},
	{"zfs_zil", "zil"},
}

// zfsPoolStates are the pool states node_exporter serves one series each
// for, the current one with value 1.
var zfsPoolStates = []string{"online", "degraded", "faulted", "offline", "removed", "unavail", "suspended"}

// kstat data types of a named kstat (lib/libspl/include/sys/kstat.h);
// node_exporter serves the 64-bit integers only.
const (
	kstatDataInt64  = "3"
	kstatDataUint64 = "4"
)

func newZFSCollector(env Env) *zfsCollector {
	return &zfsCollector{
		base:   filepath.Join(env.Paths.ProcFS, "spl/kstat/zfs"),
		logger: env.Logger,
		state:  prometheus.NewDesc("node_zfs_zpool_state", "kstat.zfs.misc.state", []string{"zpool", "state"}, nil),
	}
}

func (c *zfsCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	if _, err := os.Stat(c.base); err != nil {
		// The zfs module is not loaded.
		return fmt.Errorf("%w: %s: %w", ErrNoData, c.base, err)
	}
	var errs []error
	for _, f := range zfsKstatFiles {
		path := filepath.Join(c.base, f.file)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // not in this module version
		}
		if err == nil {
			err = c.sendKstats(ch, f.subsystem, f.file, b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", path, err))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	errs = append(errs, c.updatePools(ctx, ch)...)
	return errors.Join(errs...)
}

// sendKstats serves the 64-bit integer kstats of one named kstat file.
func (c *zfsCollector) sendKstats(ch chan<- prometheus.Metric, subsystem, file string, b []byte) error {
	kstats, err := parseZFSKstats(b)
	if err != nil {
		return err
	}
	// A bad kstat is reported and the rest of the file still served.
	var errs []error
	for _, k := range kstats {
		v, ok, err := k.number()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			c.send(ch, "node_"+subsystem+"_"+zfsMetricName(k.name), "kstat.zfs.misc."+file+"."+k.name, v, nil)
		}
	}
	return errors.Join(errs...)
}

// updatePools serves the per-pool kstats. A pool exported or destroyed
// during the scrape (its files listed, then gone) is skipped.
func (c *zfsCollector) updatePools(ctx context.Context, ch chan<- prometheus.Metric) []error {
	var errs []error
	read := func(pattern string, each func(pool, path string, b []byte) error) {
		paths, err := filepath.Glob(filepath.Join(c.base, pattern))
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s/%s: %w", c.base, pattern, err))
			return
		}
		for _, p := range paths {
			if ctx.Err() != nil {
				return
			}
			b, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				c.logger.Debug("ZFS pool kstat vanished", "path", p)
				continue
			}
			if err == nil {
				err = each(filepath.Base(filepath.Dir(p)), p, b)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("reading %s: %w", p, err))
			}
		}
	}
	read("*/io", func(pool, _ string, b []byte) error {
		fields, err := parseZFSPoolIO(b)
		for _, f := range fields {
			c.send(ch, "node_zfs_zpool_"+zfsMetricName(f.name), "kstat.zfs.misc.io."+f.name, float64(f.value),
				zfsPoolLabels, pool)
		}
		return err
	})
	read("*/objset-*", func(pool, _ string, b []byte) error {
		kstats, err := parseZFSKstats(b)
		if err != nil {
			return err
		}
		dataset := ""
		for _, k := range kstats {
			if k.name == "dataset_name" {
				dataset = k.data
				break
			}
		}
		for _, k := range kstats {
			// Only unsigned counters, as node_exporter serves them.
			if k.typ != kstatDataUint64 {
				continue
			}
			v, _, err := k.number()
			if err != nil {
				return err
			}
			c.send(ch, "node_zfs_zpool_dataset_"+zfsMetricName(k.name), "kstat.zfs.misc.objset."+k.name, v,
				zfsDatasetLabels, pool, dataset)
		}
		return nil
	})
	read("*/state", func(pool, _ string, b []byte) error {
		state := zfsPoolState(b)
		for _, s := range zfsPoolStates {
			v := 0.0
			if s == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, pool, s)
		}
		return nil
	})
	return errs
}

// Label names of the per-pool and per-dataset kstat families.
var (
	zfsPoolLabels    = []string{"zpool"}
	zfsDatasetLabels = []string{"zpool", "dataset"}
)

// send serves one untyped kstat series. A kstat whose name makes no valid
// metric name is skipped (node_exporter would crash on it).
func (c *zfsCollector) send(ch chan<- prometheus.Metric, name, help string, v float64, labelNames []string, labelValues ...string) {
	m, err := prometheus.NewConstMetric(c.descs.get(name, help, labelNames), prometheus.UntypedValue, v, labelValues...)
	if err != nil {
		c.logger.Debug("Skipping ZFS kstat", "kstat", help, "err", err)
		return
	}
	ch <- m
}

// zfsMetricName is node_exporter's metric name for a kstat name: the part
// after the last ".", with "-" as "_".
func zfsMetricName(kstat string) string {
	if i := strings.LastIndexByte(kstat, '.'); i >= 0 {
		kstat = kstat[i+1:]
	}
	return strings.ReplaceAll(kstat, "-", "_")
}

// zfsKstat is one line of a named kstat file.
type zfsKstat struct {
	name, typ string
	value     string // the third field: the number of a numeric kstat
	data      string // the rest of the line after the type: the whole string of a string kstat
}

// number returns the value of a 64-bit integer kstat; ok is false for the
// other types, which node_exporter does not serve.
func (k zfsKstat) number() (v float64, ok bool, err error) {
	switch k.typ {
	case kstatDataUint64:
		u, err := strconv.ParseUint(k.value, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("kstat %s: %w", k.name, err)
		}
		return float64(u), true, nil
	case kstatDataInt64:
		i, err := strconv.ParseInt(k.value, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("kstat %s: %w", k.name, err)
		}
		return float64(i), true, nil
	}
	return 0, false, nil
}

// parseZFSKstats parses a named kstat file: a kstat header line, the column
// header "name type data", then one kstat per line.
//
//	13 1 0x01 147 39984 3624632231 5836101392417
//	name                            type data
//	hits                            4    10286925
//	dataset_name                    7    tank/home
//
// Lines before the column header, and lines with fewer than three fields,
// are skipped, as node_exporter skips them. A file without the column
// header is an error.
func parseZFSKstats(b []byte) ([]zfsKstat, error) {
	var out []zfsKstat
	header := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if !header {
			header = len(fields) == 3 && fields[0] == "name" && fields[1] == "type" && fields[2] == "data"
			continue
		}
		if len(fields) < 3 {
			continue
		}
		out = append(out, zfsKstat{name: fields[0], typ: fields[1], value: fields[2], data: afterFields(line, 2)})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !header {
		return nil, errors.New(`no "name type data" header`)
	}
	return out, nil
}

// afterFields returns line after its first n whitespace-separated fields
// and the whitespace that follows them. For a string kstat that is the whole
// string, spaces included. (node_exporter cuts the dataset name at the
// first occurrence of its first word in the line, which for a pool named
// "data" is inside "dataset_name"; see docs/node-collectors.md.)
func afterFields(line string, n int) string {
	// Whitespace as strings.Fields sees it, so that the string starts with
	// the third field.
	rest := line
	for range n {
		rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
		i := strings.IndexFunc(rest, unicode.IsSpace)
		if i < 0 {
			return ""
		}
		rest = rest[i:]
	}
	return strings.TrimLeftFunc(rest, unicode.IsSpace)
}

// zfsIOField is one column of a pool's io kstat.
type zfsIOField struct {
	name  string
	value uint64
}

// parseZFSPoolIO parses a pool's io kstat: a kstat header line, a line of
// at least twelve column names starting with nread, then the values.
//
//	12 3 0x00 1 80 2225326830 47456452424446
//	nread    nwritten   reads    writes   wtime    wlentime   wupdate  rtime    rlentime   rupdate  wcnt     rcnt
//	1884160  3206144    22       132      7155162  104112268  465685557547 8174 1087447380 465685570839 0 0
//
// Only the first line of values counts. A values line shorter than the
// names (node_exporter indexes past its end and crashes) or a value that is
// not a number is an error; the columns before it are returned.
func parseZFSPoolIO(b []byte) ([]zfsIOField, error) {
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if names == nil {
			if len(fields) >= 12 && fields[0] == "nread" {
				names = fields
			}
			continue
		}
		if len(fields) < len(names) {
			return nil, fmt.Errorf("%d values for %d columns", len(fields), len(names))
		}
		out := make([]zfsIOField, 0, len(names))
		for i, name := range names {
			v, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				return out, fmt.Errorf("column %s: %w", name, err)
			}
			out = append(out, zfsIOField{name: name, value: v})
		}
		return out, nil
	}
	return nil, sc.Err()
}

// zfsPoolState is a pool's state file (ONLINE, DEGRADED, ...) as a
// lower-case state name: its first line.
func zfsPoolState(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return strings.ToLower(string(line))
}
