package storage

import (
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
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "zfs",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newZFSCollector(env), nil }
		},
		KnownLintProblems: []collectors.LintException{
			collectors.Inherited(`node_zfs_.*`, "", "node_exporter names every ZFS family after the kernel module's kstat (zfetchstats max_completion_us and the like)"),
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

func newZFSCollector(env collectors.Env) *zfsCollector {
	return &zfsCollector{
		base:   filepath.Join(env.Paths.ProcFS, "spl/kstat/zfs"),
		logger: env.Logger,
	}
}

// Update serves UpdateFamilies' output; the Scraper calls UpdateFamilies
// directly.
func (c *zfsCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendFamilies(ctx, ch, c.UpdateFamilies)
}

// UpdateFamilies builds the families directly: a storage node with a
// thousand datasets has over 13,000 ZFS series, and the Update path would
// cost ten times as much per series (docs/performance.md).
func (c *zfsCollector) UpdateFamilies(ctx context.Context) ([]*dto.MetricFamily, error) {
	if _, err := os.Stat(c.base); err != nil {
		// The zfs module is not loaded.
		return nil, fmt.Errorf("%w: %s: %w", collectors.ErrNoData, c.base, err)
	}
	out := &zfsFamilies{logger: c.logger, byName: map[string]*zfsFamily{}}
	var buf bytes.Buffer
	var errs []error
	for _, f := range zfsKstatFiles {
		path := filepath.Join(c.base, f.file)
		b, err := readFileInto(&buf, path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // not in this module version
		}
		if err == nil {
			err = out.addKstats(f.subsystem, f.file, b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", path, err))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	errs = append(errs, c.updatePools(ctx, out, &buf)...)
	return out.families(), errors.Join(errs...)
}

// readFileInto reads a kstat file into buf, reusing its memory across the
// scrape's files and skipping the stat that os.ReadFile makes (kstat files
// report size 0 anyway).
func readFileInto(buf *bytes.Buffer, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// addKstats adds the 64-bit integer kstats of one named kstat file. A bad
// kstat is reported and the rest of the file still served.
func (z *zfsFamilies) addKstats(subsystem, file string, b []byte) error {
	kstats, err := parseZFSKstats(b)
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range kstats {
		v, ok, err := k.number()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			z.add("node_"+subsystem+"_"+zfsMetricName(k.name), "kstat.zfs.misc."+file+"."+k.name, dto.MetricType_UNTYPED, v, nil)
		}
	}
	return errors.Join(errs...)
}

// updatePools serves the per-pool kstats. A pool exported or destroyed
// during the scrape (its files listed, then gone) is skipped.
func (c *zfsCollector) updatePools(ctx context.Context, out *zfsFamilies, buf *bytes.Buffer) []error {
	var errs []error
	read := func(pattern string, each func(pool, path string, b []byte) error) {
		_, err := hostfile.EachMatch(ctx, filepath.Join(c.base, pattern), func(path string) error {
			b, err := readFileInto(buf, path)
			if err == nil {
				err = each(filepath.Base(filepath.Dir(path)), path, b)
			}
			if err != nil {
				return fmt.Errorf("reading %s: %w", path, err)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	read("*/io", func(pool, _ string, b []byte) error {
		fields, err := parseZFSPoolIO(b)
		for _, f := range fields {
			out.add("node_zfs_zpool_"+zfsMetricName(f.name), "kstat.zfs.misc.io."+f.name, dto.MetricType_UNTYPED,
				float64(f.value), labelPairs("zpool", pool))
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
		// The dataset's series share one set of label pairs: a thousand
		// datasets make over ten thousand series.
		labels := labelPairs("dataset", dataset, "zpool", pool)
		seen := map[string]bool{}
		for _, k := range kstats {
			// Only unsigned counters, as node_exporter serves them, and
			// each once.
			if k.typ != kstatDataUint64 || seen[k.name] {
				continue
			}
			seen[k.name] = true
			v, _, err := k.number()
			if err != nil {
				return err
			}
			out.add("node_zfs_zpool_dataset_"+zfsMetricName(k.name), "kstat.zfs.misc.objset."+k.name, dto.MetricType_UNTYPED,
				v, labels)
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
			out.add("node_zfs_zpool_state", "kstat.zfs.misc.state", dto.MetricType_GAUGE, v, labelPairs("state", s, "zpool", pool))
		}
		return nil
	})
	return errs
}

// zfsFamilies collects one scrape's families in the order first seen.
type zfsFamilies struct {
	logger *slog.Logger
	order  []*zfsFamily
	byName map[string]*zfsFamily
}

type zfsFamily struct {
	mf *dto.MetricFamily
	// unlabelled records that the family's one unlabelled series exists:
	// a kstat file naming a kstat twice must not serve it twice.
	unlabelled bool
}

// add appends one series. labels are sorted by name and may be shared
// between series: families are never modified once returned. A kstat whose
// name makes no valid metric name is skipped (node_exporter would crash on
// it).
func (z *zfsFamilies) add(name, help string, typ dto.MetricType, v float64, labels []*dto.LabelPair) {
	f, ok := z.byName[name]
	if !ok {
		if !model.LegacyValidation.IsValidMetricName(name) {
			z.logger.Debug("Skipping ZFS kstat with no valid metric name", "kstat", help)
			return
		}
		f = &zfsFamily{mf: &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: typ.Enum()}}
		z.byName[name] = f
		z.order = append(z.order, f)
	}
	if len(labels) == 0 {
		if f.unlabelled {
			return
		}
		f.unlabelled = true
	}
	m := &dto.Metric{Label: labels}
	if typ == dto.MetricType_GAUGE {
		m.Gauge = &dto.Gauge{Value: proto.Float64(v)}
	} else {
		m.Untyped = &dto.Untyped{Value: proto.Float64(v)}
	}
	f.mf.Metric = append(f.mf.Metric, m)
}

// labelPairs builds label pairs from alternating names and values; the
// names must come sorted. Values are made valid UTF-8.
func labelPairs(kv ...string) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &dto.LabelPair{Name: proto.String(kv[i]), Value: proto.String(strings.ToValidUTF8(kv[i+1], "\uFFFD"))})
	}
	return out
}

func (z *zfsFamilies) families() []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, len(z.order))
	for i, f := range z.order {
		out[i] = f.mf
	}
	return out
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
	for raw := range bytes.Lines(b) {
		line := kstatLine(raw)
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
	if !header {
		return nil, errors.New(`no "name type data" header`)
	}
	return out, nil
}

// kstatLine is one line of a kstat file without its line ending.
func kstatLine(raw []byte) string {
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	return string(bytes.TrimSuffix(raw, []byte("\r")))
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
	for raw := range bytes.Lines(b) {
		fields := strings.Fields(kstatLine(raw))
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
	return nil, nil
}

// zfsPoolState is a pool's state file (ONLINE, DEGRADED, ...) as a
// lower-case state name: its first line.
func zfsPoolState(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return strings.ToLower(string(line))
}
