package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDescribeBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// net with cgo on links the C library's resolver.
	src := "package main\n\nimport \"net\"\n\nfunc main() { _, _ = net.LookupHost(\"localhost\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(out string, cgo string, args ...string) string {
		t.Helper()
		cmd := exec.Command("go", append(append([]string{"build"}, args...), "-o", out, ".")...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
		return filepath.Join(dir, out)
	}
	for _, tc := range []struct {
		bin  string
		want []string
		not  []string
	}{
		{build("static", "0", "-trimpath"), []string{"static,", "CGO_ENABLED=0", "-trimpath"}, []string{"dynamic"}},
		{build("dynamic", "1"), []string{"dynamically linked", "CGO_ENABLED=1"}, []string{"static", "trimpath"}},
	} {
		got, err := describeBinary(tc.bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", filepath.Base(tc.bin), got, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(got, n) {
				t.Errorf("%s: %q has %q", filepath.Base(tc.bin), got, n)
			}
		}
	}
	if _, err := describeBinary(filepath.Join(dir, "main.go")); err == nil || !strings.Contains(err.Error(), "main.go") {
		t.Errorf("a source file: error %v, want one naming it", err)
	}
}
