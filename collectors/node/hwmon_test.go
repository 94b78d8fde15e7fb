package node

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases are golden cases in testdata/hwmon.

// TestHwmonUnreadableAttribute: a sensor whose driver answers EIO (or
// EAGAIN forever) loses that attribute only; the scrape succeeds.
func TestHwmonUnreadableAttribute(t *testing.T) {
	t.Parallel()
	env := collectortest.Env(t, filepath.Join("testdata", "hwmon/good"))
	c, err := collectortest.Build(t, "hwmon", env, "--collector.hwmon.chip-include=^platform_coretemp_0$")
	if err != nil {
		t.Fatal(err)
	}
	hc := c.(*hwmonCollector)
	var failed []string
	hc.readAttr = func(path string) (string, error) {
		switch filepath.Base(path) {
		case "temp2_input", "temp1_label":
			failed = append(failed, filepath.Base(path))
			return "", &os.PathError{Op: "read", Path: path, Err: syscall.EIO}
		}
		return hostfile.ReadSysfsAttr(path)
	}
	out, err := collectortest.Exposition(t, hc)
	if err != nil {
		t.Fatalf("an unreadable attribute must not fail the scrape: %v", err)
	}
	if len(failed) != 2 {
		t.Fatalf("the fake read was not used for both attributes: %v", failed)
	}
	got := string(out)
	for _, gone := range []string{
		`node_hwmon_temp_celsius{chip="platform_coretemp_0",sensor="temp2"}`,
		`label="Package id 0"`,
	} {
		if strings.Contains(got, gone) {
			t.Errorf("%s served although its file could not be read", gone)
		}
	}
	for _, kept := range []string{
		`node_hwmon_temp_celsius{chip="platform_coretemp_0",sensor="temp1"} 46`,
		`node_hwmon_temp_max_celsius{chip="platform_coretemp_0",sensor="temp2"} 84`,
		`node_hwmon_sensor_label{chip="platform_coretemp_0",label="Core 0",sensor="temp2"} 1`,
	} {
		if !strings.Contains(got, kept) {
			t.Errorf("%s missing:\n%s", kept, got)
		}
	}
}

// TestHwmonChipNamingKept: a chip's name file and the name derived from
// its device path are read when its directory is first seen and kept while
// the directory is the same one (the same inode: a driver that registers
// the device again makes a new directory); its sensors are read every
// scrape.
func TestHwmonChipNamingKept(t *testing.T) {
	t.Parallel()
	dir := collectortest.CopyTree(t, "hwmon/good")
	c := collectortest.MustBuildFixture(t, "hwmon", dir, "--collector.hwmon.chip-include=^platform_coretemp_0$")
	chipDir := "sys/devices/platform/coretemp.0/hwmon/hwmon1"
	scrape := func() string { return collectortest.MustExposition(t, c) }
	want := func(got string, lines ...string) {
		t.Helper()
		for _, l := range lines {
			if !strings.Contains(got, l+"\n") {
				t.Errorf("missing %s in:\n%s", l, got)
			}
		}
	}
	want(scrape(), `node_hwmon_chip_names{chip="platform_coretemp_0",chip_name="coretemp"} 1`,
		`node_hwmon_temp_celsius{chip="platform_coretemp_0",sensor="temp1"} 46`)

	// The same directory: the kept name, the sensors' new values.
	collectortest.WriteFile(t, dir, chipDir+"/name", "renamed\n")
	collectortest.WriteFile(t, dir, chipDir+"/temp1_input", "51000\n")
	want(scrape(), `node_hwmon_chip_names{chip="platform_coretemp_0",chip_name="coretemp"} 1`,
		`node_hwmon_temp_celsius{chip="platform_coretemp_0",sensor="temp1"} 51`)

	// The device registered again: a new directory under the same path
	// (made before the old one goes, so that its inode differs).
	src, fresh, old := filepath.Join(dir, chipDir), filepath.Join(dir, chipDir+".new"), filepath.Join(dir, chipDir+".old")
	if err := os.Mkdir(fresh, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type()&os.ModeSymlink != 0 { // device
			target, err := os.Readlink(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(fresh, e.Name())); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(fresh, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, mv := range [][2]string{{src, old}, {fresh, src}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(old); err != nil {
		t.Fatal(err)
	}
	want(scrape(), `node_hwmon_chip_names{chip="platform_coretemp_0",chip_name="renamed"} 1`)

	// A chip whose directory went away is neither served nor kept.
	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	if got := scrape(); strings.Contains(got, "platform_coretemp_0") {
		t.Errorf("a removed chip is still served:\n%s", got)
	}
	for kept := range c.(*hwmonCollector).naming {
		if strings.HasSuffix(kept, "/hwmon1") {
			t.Errorf("%s kept after its directory went away", kept)
		}
	}
}

func TestHwmonBadFilter(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"chip-include", "chip-exclude", "sensor-include", "sensor-exclude"} {
		_, err := collectortest.Build(t, "hwmon", collectortest.TempEnv(t, t.TempDir()), "--collector.hwmon."+flag+"=(")
		if err == nil || !strings.Contains(err.Error(), "--collector.hwmon."+flag) {
			t.Errorf("%s: want an error naming the flag, got %v", flag, err)
		}
	}
}

func TestHwmonSplitSensorFile(t *testing.T) {
	t.Parallel()
	c, err := newHwmonCollector(collectortest.TempEnv(t, t.TempDir()), hwmonConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in    string
		typ   string
		index int
		prop  string
		ok    bool
	}{
		{"temp1_input", "temp", 1, "input", true},
		{"temp12_crit_alarm", "temp", 12, "crit_alarm", true},
		{"in0_min", "in", 0, "min", true},
		{"pwm1", "pwm", 1, "", true},
		{"vrm", "vrm", 0, "", true},
		{"beep_enable", "beep_enable", 0, "", true},
		{"update_interval", "update_interval", 0, "", true},
		{"cpu0_vid", "cpu", 0, "vid", true},
		{"1temp", "", 0, "", false},
		{"temp99999999999999999999_input", "", 0, "", false},
	} {
		typ, index, prop, ok := c.splitSensorFile(tc.in)
		if typ != tc.typ || index != tc.index || prop != tc.prop || ok != tc.ok {
			t.Errorf("splitSensorFile(%q) = %q, %d, %q, %v; want %q, %d, %q, %v",
				tc.in, typ, index, prop, ok, tc.typ, tc.index, tc.prop, tc.ok)
		}
	}
}

// FuzzHwmonNames checks the two hand-written name parsers: attribute file
// names split into a digit-free type, and cleaned names are valid label
// material without leading or trailing '_'.
func FuzzHwmonNames(f *testing.F) {
	for _, s := range []string{"temp1_input", "fan2_target", "vrm", "Package id 0", "0000:01:00.0", "__x__", "in1_", "ä1_b"} {
		f.Add(s)
	}
	c, err := newHwmonCollector(collectors.Env{}, hwmonConfig{})
	if err != nil {
		f.Fatal(err)
	}
	cleanRE := regexp.MustCompile(`^([a-z0-9:]([a-z0-9:_]*[a-z0-9:])?)?$`)
	f.Fuzz(func(t *testing.T, s string) {
		if typ, index, _, ok := c.splitSensorFile(s); ok {
			if typ == "" || strings.ContainsAny(typ, "0123456789") || index < 0 || !strings.HasPrefix(s, typ) {
				t.Errorf("splitSensorFile(%q) = type %q, index %d", s, typ, index)
			}
		}
		if got := c.clean(s); !cleanRE.MatchString(got) {
			t.Errorf("clean(%q) = %q", s, got)
		}
	})
}
