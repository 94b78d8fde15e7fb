package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "os",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newOSCollector(env), nil }
		},
	})
}

// osCollector serves the host's os-release as node_os_info,
// node_os_version and node_os_support_end_timestamp_seconds.
type osCollector struct {
	rootfs string
	logger *slog.Logger
	// files are read under --path.rootfs; the first that exists wins
	// (os-release(5)).
	files []string
	// versionRE is the major.minor part of VERSION_ID that node_os_version
	// serves, as node_exporter reads it.
	versionRE *regexp.Regexp

	// The parsed file is kept and parsed again only when its path, inode,
	// size or modification time changes (os-release changes with an
	// upgrade, not between scrapes): a stat instead of open, read and
	// parse each scrape.
	mu     sync.Mutex
	cached osRelease

	info, version, supportEnd *prometheus.Desc
}

// osRelease is one parsed os-release file and what identifies its version.
type osRelease struct {
	path    string
	version hostfile.FileVersion
	env     map[string]string
}

func newOSCollector(env collectors.Env) *osCollector {
	return &osCollector{
		rootfs:    env.Paths.RootFS,
		logger:    env.Logger,
		files:     []string{"/etc/os-release", "/usr/lib/os-release"},
		versionRE: regexp.MustCompile(`^[0-9]+\.?[0-9]*`),
		info: prometheus.NewDesc("node_os_info",
			"A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, "+
				"name, pretty_name, variant, variant_id, version, version_codename, version_id.",
			[]string{"build_id", "id", "id_like", "image_id", "image_version", "name", "pretty_name",
				"variant", "variant_id", "version", "version_codename", "version_id"}, nil),
		version: prometheus.NewDesc("node_os_version",
			"Metric containing the major.minor part of the OS version.",
			[]string{"id", "id_like", "name"}, nil),
		supportEnd: prometheus.NewDesc("node_os_support_end_timestamp_seconds",
			"Metric containing the end-of-life date timestamp of the OS.", nil, nil),
	}
}

// osRelease returns the first os-release file that exists, parsed, from
// the cache while the file is unchanged; a nil map when none exists.
func (c *osCollector) osRelease() (map[string]string, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range c.files {
		// Joined as node_exporter joins them: the rootfs flag is a prefix.
		path := c.rootfs + name
		version, err := hostfile.StatVersion(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, path, fmt.Errorf("reading %s: %w", path, err)
		}
		if k := c.cached; k.env != nil && k.path == path && k.version == version {
			return k.env, path, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, path, fmt.Errorf("reading %s: %w", path, err)
		}
		env, err := parseOSRelease(bytes.NewReader(b))
		if err != nil {
			return nil, path, fmt.Errorf("parsing %s: %w", path, err)
		}
		c.cached = osRelease{path: path, version: version, env: env}
		return env, path, nil
	}
	return nil, "", nil
}

func (c *osCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	env, path, err := c.osRelease()
	if err != nil {
		return err
	}
	if env == nil {
		c.logger.Debug("os: no os-release file", "rootfs", c.rootfs, "files", c.files)
		return fmt.Errorf("%w: no os-release file under %q", collectors.ErrNoData, c.rootfs)
	}
	var supportEnd time.Time
	if s := env["SUPPORT_END"]; s != "" {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return fmt.Errorf("%s: SUPPORT_END: %w", path, err)
		}
		supportEnd = t
	}
	var version float64
	if v := c.versionRE.FindString(env["VERSION_ID"]); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%s: VERSION_ID: %w", path, err)
		}
		version = f
	}

	l := func(key string) string { return hostfile.ValidLabel(env[key]) }
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1,
		l("BUILD_ID"), l("ID"), l("ID_LIKE"), l("IMAGE_ID"), l("IMAGE_VERSION"), l("NAME"), l("PRETTY_NAME"),
		l("VARIANT"), l("VARIANT_ID"), l("VERSION"), l("VERSION_CODENAME"), l("VERSION_ID"))
	if version > 0 {
		ch <- prometheus.MustNewConstMetric(c.version, prometheus.GaugeValue, version, l("ID"), l("ID_LIKE"), l("NAME"))
	}
	if !supportEnd.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.supportEnd, prometheus.GaugeValue, float64(supportEnd.Unix()))
	}
	return nil
}

// parseOSRelease parses an os-release file: newline-separated KEY=value
// assignments, '#' comments and blank lines, values optionally quoted as in
// the shell (os-release(5)):
//
//	NAME="Debian GNU/Linux"
//	VERSION_ID='12'
//	ID=debian            # an unquoted value ends at '#'
//	PRETTY_NAME="say \"hi\" for \$5"
//
// In double quotes a backslash escapes ", \, $ and ` and is kept before any
// other character; outside quotes it escapes any character. A line without
// '=' or with an unterminated quote is an error, as for node_exporter.
func parseOSRelease(r io.Reader) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: no '=' in %q", n, line)
		}
		key = strings.TrimSpace(strings.TrimPrefix(key, "export "))
		if !validOSReleaseKey(key) {
			return nil, fmt.Errorf("line %d: invalid key %q", n, key)
		}
		value, err := unquoteOSReleaseValue(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", n, key, err)
		}
		env[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return env, nil
}

// validOSReleaseKey accepts shell variable names and, like node_exporter's
// parser, '.' and '/' after the first character.
func validOSReleaseKey(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		switch {
		case r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z'):
		case i > 0 && ((r >= '0' && r <= '9') || r == '.' || r == '/'):
		default:
			return false
		}
	}
	return true
}

func unquoteOSReleaseValue(s string) (string, error) {
	var b strings.Builder
	const (
		plain = iota
		single
		double
	)
	mode := plain
	trailing := 0 // unquoted white space at the end of b, dropped at the end
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch mode {
		case plain:
			switch ch {
			case '#':
				return b.String()[:b.Len()-trailing], nil
			case '\'':
				mode, trailing = single, 0
			case '"':
				mode, trailing = double, 0
			case '\\':
				if i+1 < len(s) {
					i++
					b.WriteByte(s[i])
				}
				trailing = 0
			case ' ', '\t':
				b.WriteByte(ch)
				trailing++
			default:
				b.WriteByte(ch)
				trailing = 0
			}
		case single:
			if ch == '\'' {
				mode = plain
				continue
			}
			b.WriteByte(ch)
		case double:
			switch {
			case ch == '"':
				mode = plain
			case ch == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
				i++
				b.WriteByte(s[i])
			default:
				b.WriteByte(ch)
			}
		}
	}
	switch mode {
	case single:
		return "", errors.New("unterminated single quote")
	case double:
		return "", errors.New("unterminated double quote")
	}
	return b.String()[:b.Len()-trailing], nil
}
