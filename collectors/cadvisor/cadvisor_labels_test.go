package cadvisor

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nodeagent/nodeagent/internal/exposition"
)

// TestLabelShapes: every label set of a cgroup has the base labels and
// its own merged in name order, with the labels dropped left out; a
// device's and an interface's sets are built once.
func TestLabelShapes(t *testing.T) {
	id := identity{container: "app", id: "/kubepods/pod1/abc", image: "img:1", name: "abc", ns: "default", pod: "web-0"}
	render := func(ls *exposition.LabelSet) string {
		var b strings.Builder
		for i := range ls.Len() {
			b.WriteString(ls.Name(i) + "=" + ls.Value(i) + " ")
		}
		return b.String()
	}
	for _, tc := range []struct {
		name             string
		dropID, dropName bool
		want             map[string]string
	}{
		{"all labels", false, false, map[string]string{
			"base":     "container=app id=/kubepods/pod1/abc image=img:1 name=abc namespace=default pod=web-0 ",
			"cpu":      "container=app cpu=total id=/kubepods/pod1/abc image=img:1 name=abc namespace=default pod=web-0 ",
			"failures": "container=app failure_type=pgmajfault id=/kubepods/pod1/abc image=img:1 name=abc namespace=default pod=web-0 scope=hierarchy ",
			"fs":       "container=app device=/dev/sda id=/kubepods/pod1/abc image=img:1 name=abc namespace=default pod=web-0 ",
			"blkio":    "container=app device=/dev/sda id=/kubepods/pod1/abc image=img:1 major=8 minor=0 name=abc namespace=default operation=Write pod=web-0 ",
			"net":      "container=app id=/kubepods/pod1/abc image=img:1 interface=eth0 name=abc namespace=default pod=web-0 ",
		}},
		{"id and name dropped", true, true, map[string]string{
			"base":     "container=app image=img:1 namespace=default pod=web-0 ",
			"cpu":      "container=app cpu=total image=img:1 namespace=default pod=web-0 ",
			"failures": "container=app failure_type=pgmajfault image=img:1 namespace=default pod=web-0 scope=hierarchy ",
			"fs":       "container=app device=/dev/sda image=img:1 namespace=default pod=web-0 ",
			"blkio":    "container=app device=/dev/sda image=img:1 major=8 minor=0 namespace=default operation=Write pod=web-0 ",
			"net":      "container=app image=img:1 interface=eth0 namespace=default pod=web-0 ",
		}},
		{"name dropped", false, true, map[string]string{
			"base": "container=app id=/kubepods/pod1/abc image=img:1 namespace=default pod=web-0 ",
			"net":  "container=app id=/kubepods/pod1/abc image=img:1 interface=eth0 namespace=default pod=web-0 ",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cadvisorCollector{dropID: tc.dropID, dropName: tc.dropName, shapes: newLabelShapes(tc.dropID, tc.dropName)}
			ls := c.newLabelSet(id)
			io := c.ioLabelsFor(ls, 8, 0, "/dev/sda")
			got := map[string]*exposition.LabelSet{
				"base": ls.base, "cpu": ls.cpu, "failures": ls.failures[1][1],
				"fs": io.fs, "blkio": io.blkio[1], "net": c.netLabelsFor(ls, "eth0"),
			}
			for kind, want := range tc.want {
				if r := render(got[kind]); r != want {
					t.Errorf("%s: %q, want %q", kind, r, want)
				}
			}
			if c.ioLabelsFor(ls, 8, 0, "/dev/sda") != io || c.netLabelsFor(ls, "eth0") != got["net"] {
				t.Error("a device's or interface's label sets were built again")
			}
			if other := c.newLabelSet(identity{container: "x"}); render(other.failures[0][0]) == render(ls.failures[0][0]) {
				t.Error("two identities gave the same label set")
			}
		})
	}
}

// TestSameLabels: families whose label sets are the same list share one
// copy; any other list, however alike, gets its own; concurrent builders
// (under -race) get consistent answers.
func TestSameLabels(t *testing.T) {
	a, b, c := exposition.NewLabelSetPairs("id", "/a"), exposition.NewLabelSetPairs("id", "/b"), exposition.NewLabelSetPairs("id", "/a")
	var same sameLabels
	buf := []*exposition.LabelSet{a, b}
	first := same.get(buf)
	buf[0] = nil // the caller's buffer is reused: the kept list is a copy
	if first[0] != a {
		t.Fatal("get kept the caller's buffer instead of a copy")
	}
	for _, tc := range []struct {
		name   string
		labels []*exposition.LabelSet
		shared bool
	}{
		{"the same sets in the same order", []*exposition.LabelSet{a, b}, true},
		{"equal text, another set", []*exposition.LabelSet{c, b}, false},
		{"another order", []*exposition.LabelSet{b, a}, false},
		{"a prefix", []*exposition.LabelSet{a}, false},
	} {
		got := same.get(tc.labels)
		if shared := &got[0] == &first[0]; shared != tc.shared {
			t.Errorf("%s: shared %v, want %v", tc.name, shared, tc.shared)
		}
		if !slices.Equal(got, tc.labels) {
			t.Errorf("%s: got another list", tc.name)
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if got := same.get([]*exposition.LabelSet{a, b}); &got[0] != &first[0] {
				t.Error("a concurrent builder got its own copy")
			}
		})
	}
	wg.Wait()
}
