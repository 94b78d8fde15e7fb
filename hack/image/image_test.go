package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const testEpoch = "1764864591" // 2025-12-04T16:09:51Z

// inputs writes a stand-in binary per platform (their contents differ, so a
// mix-up shows) and a stand-in CA bundle; it returns the command's flags.
func inputs(t *testing.T) (args []string, binaries map[string][]byte, ca []byte) {
	t.Helper()
	dir := t.TempDir()
	binaries = map[string][]byte{
		"linux/amd64":    []byte("\x7fELF stand-in for linux/amd64"),
		"linux/arm64/v8": []byte("\x7fELF stand-in for linux/arm64"),
	}
	ca = []byte("-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args = []string{
		"--version=1.2.3-rc.1",
		"--revision=0123456789abcdef0123456789abcdef01234567",
		"--licenses=Apache-2.0",
		"--ca-bundle=" + write("ca.crt", ca),
		"--binary=linux/amd64=" + write("amd64", binaries["linux/amd64"]),
		"--binary=linux/arm64=" + write("arm64", binaries["linux/arm64/v8"]),
	}
	return args, binaries, ca
}

// buildImage runs the command into a new directory and returns it.
func buildImage(t *testing.T, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "image")
	var stdout, stderr bytes.Buffer
	if code := run(append([]string{"--out=" + out}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("image %v: exit %d\n%s", args, code, stderr.String())
	}
	return out
}

// TestImage reads back the OCI layout and the tarballs the command wrote
// and checks what a runtime sees: platforms, user, entrypoint, ports,
// labels, and every file with its owner and mode.
func TestImage(t *testing.T) {
	t.Parallel()
	args, binaries, ca := inputs(t)
	out := buildImage(t, append(args, "--source-date-epoch="+testEpoch)...)
	created := time.Date(2025, 12, 4, 16, 9, 51, 0, time.UTC)

	lp, err := layout.FromPath(filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(topManifest.Manifests) != 1 {
		t.Fatalf("index.json lists %d entries, want the image index alone", len(topManifest.Manifests))
	}
	wantNames := map[string]string{
		"io.containerd.image.name":          "ghcr.io/nodeagent/nodeagent:1.2.3-rc.1",
		"org.opencontainers.image.ref.name": "1.2.3-rc.1",
	}
	if diff := cmp.Diff(wantNames, topManifest.Manifests[0].Annotations); diff != "" {
		t.Errorf("index.json annotations (-want +got):\n%s", diff)
	}
	idx, err := top.ImageIndex(topManifest.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.title":    "nodeagent",
		"org.opencontainers.image.version":  "1.2.3-rc.1",
		"org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
		"org.opencontainers.image.created":  "2025-12-04T16:09:51Z",
		"org.opencontainers.image.source":   "https://github.com/nodeagent/nodeagent",
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	if diff := cmp.Diff(wantLabels, im.Annotations); diff != "" {
		t.Errorf("index annotations (-want +got):\n%s", diff)
	}

	var platforms []string
	for _, desc := range im.Manifests {
		if desc.Platform == nil {
			t.Fatalf("manifest %s has no platform", desc.Digest)
		}
		plat := desc.Platform.String()
		platforms = append(platforms, plat)
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(plat, func(t *testing.T) {
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if got := cf.Platform().String(); got != plat {
				t.Errorf("config platform %s, index says %s", got, plat)
			}
			if !cf.Created.Time.Equal(created) {
				t.Errorf("created %s, want %s", cf.Created.Time, created)
			}
			wantConfig := v1.Config{
				User:         "65534:65534",
				Entrypoint:   []string{"/bin/nodeagent"},
				ExposedPorts: map[string]struct{}{"9812/tcp": {}, "9813/tcp": {}},
				Labels:       wantLabels,
			}
			if diff := cmp.Diff(wantConfig, cf.Config); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if len(cf.History) != 2 {
				t.Errorf("%d history entries, want one per layer (2)", len(cf.History))
			}
			for _, h := range cf.History {
				if !h.Created.Time.Equal(created) {
					t.Errorf("history %q created %s, want %s", h.CreatedBy, h.Created.Time, created)
				}
			}
			wantFiles := []fileInfo{
				{"bin", "dir 0755 0:0", ""},
				{"bin/nodeagent", "file 0755 0:0", digest(binaries[plat])},
				{"etc", "dir 0755 0:0", ""},
				{"etc/group", "file 0644 0:0", digest([]byte("root:x:0:\nnogroup:x:65534:\n"))},
				{"etc/passwd", "file 0644 0:0", digest([]byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"))},
				{"etc/ssl", "dir 0755 0:0", ""},
				{"etc/ssl/certs", "dir 0755 0:0", ""},
				{"etc/ssl/certs/ca-certificates.crt", "file 0644 0:0", digest(ca)},
			}
			// Flattened, as a runtime unpacks it (names without the
			// directories' trailing slash).
			got := files(t, mutate.Extract(img), created)
			slices.SortFunc(got, func(a, b fileInfo) int { return strings.Compare(a.name, b.name) })
			if diff := cmp.Diff(wantFiles, got, cmp.AllowUnexported(fileInfo{})); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			t.Logf("%d files and directories compared", len(got))

			// The docker-archive tarball of this platform holds the same
			// image under the version tag.
			arch := strings.TrimSuffix(strings.TrimPrefix(plat, "linux/"), "/v8")
			path := filepath.Join(out, "nodeagent-1.2.3-rc.1-linux-"+arch+".tar")
			tag, err := name.NewTag("ghcr.io/nodeagent/nodeagent:1.2.3-rc.1")
			if err != nil {
				t.Fatal(err)
			}
			fromTar, err := tarball.ImageFromPath(path, &tag)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			for _, get := range []func(v1.Image) (v1.Hash, error){v1.Image.ConfigName, layerDigests} {
				want, err := get(img)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := get(fromTar); err != nil || got != want {
					t.Errorf("%s: %s, %v; the layout's image has %s", path, got, err, want)
				}
			}
		})
	}
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64/v8"}, platforms); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}
}

// TestImageReproducible builds twice from the same inputs and expects the
// same bytes; another commit time must change the digest.
func TestImageReproducible(t *testing.T) {
	t.Parallel()
	args, _, _ := inputs(t)
	a := buildImage(t, append(args, "--source-date-epoch="+testEpoch)...)
	b := buildImage(t, append(args, "--source-date-epoch="+testEpoch)...)
	other := buildImage(t, append(args, "--source-date-epoch=1764864592")...)

	sums := func(dir string) map[string]string {
		m := map[string]string{}
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			m[rel] = digest(data)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	sa, sb := sums(a), sums(b)
	if diff := cmp.Diff(sa, sb); diff != "" {
		t.Errorf("two builds of the same inputs differ (-first +second):\n%s", diff)
	}
	if len(sa) < 10 { // oci-layout, index.json, 2 tarballs, 8 blobs
		t.Errorf("only %d files written: %v", len(sa), sa)
	}
	t.Logf("%d files compared", len(sa))
	if sa["oci/index.json"] == sums(other)["oci/index.json"] {
		t.Error("another commit time gave the same index")
	}
}

func TestImageFlags(t *testing.T) {
	t.Parallel()
	args, _, _ := inputs(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no commit time", args, "--source-date-epoch is required"},
		{"bad commit time", append(args, "--source-date-epoch=yesterday"), "--source-date-epoch"},
		{"no binary", []string{"--version=1", "--revision=a", "--licenses=MIT", "--source-date-epoch=1"}, "--binary: at least one"},
		{"bad platform", append(args, "--binary=amd64=x"), "want os/arch"},
		{"bad tag", []string{"--version=1 2", "--revision=a", "--licenses=MIT", "--source-date-epoch=1", "--binary=linux/amd64=" + strings.TrimPrefix(args[4], "--binary=linux/amd64=")}, "image tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"--out=" + filepath.Join(t.TempDir(), "x")}, tc.args...), &stdout, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want a failure saying %q", code, stderr.String(), tc.want)
			}
		})
	}
}

type fileInfo struct {
	name, kind, sha string
}

// files lists a flattened image's entries; each must carry mtime.
func files(t *testing.T, rc io.ReadCloser, mtime time.Time) []fileInfo {
	t.Helper()
	defer rc.Close()
	var out []fileInfo
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		kind := "file"
		switch h.Typeflag {
		case tar.TypeDir:
			kind = "dir"
		case tar.TypeReg:
		default:
			kind = fmt.Sprintf("type %c", h.Typeflag)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		sum := ""
		if kind != "dir" {
			sum = digest(data)
		}
		if !h.ModTime.Equal(mtime) {
			t.Errorf("%s: mtime %s, want %s", h.Name, h.ModTime, mtime)
		}
		out = append(out, fileInfo{h.Name, fmt.Sprintf("%s %04o %d:%d", kind, h.Mode, h.Uid, h.Gid), sum})
	}
}

func digest(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// layerDigests hashes the list of an image's layer digests into one.
func layerDigests(img v1.Image) (v1.Hash, error) {
	layers, err := img.Layers()
	if err != nil {
		return v1.Hash{}, err
	}
	var all []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return v1.Hash{}, err
		}
		all = append(all, d.String())
	}
	h, _, err := v1.SHA256(strings.NewReader(strings.Join(all, ",")))
	return h, err
}
