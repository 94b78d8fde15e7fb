package main

import (
	"archive/tar"
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user: nobody/nogroup, the uid and gid the manifests under
// deploy/ run as. Nothing in the image is owned by it: the agent only reads
// the host and writes nothing.
const (
	uid = 65534
	gid = 65534
)

// Paths inside the image. The CA bundle sits where Go's crypto/x509 looks
// first on Linux, so the kubelet and API server clients trust public CAs
// without SSL_CERT_FILE.
const (
	binaryPath   = "bin/nodeagent"
	caBundlePath = "etc/ssl/certs/ca-certificates.crt"
)

// Ports the agent serves (docs/ports.md): metrics, and the plain health
// port the DaemonSet's probes use.
var exposedPorts = []string{"9812/tcp", "9813/tcp"}

// The image's /etc/passwd and /etc/group name the user and group, for
// tools that show names; the Dockerfile copies the same files.
var (
	//go:embed rootfs/etc/passwd
	passwd []byte
	//go:embed rootfs/etc/group
	group []byte
)

// spec is everything one image build depends on: the same spec gives the
// same bytes, hence the same digests.
type spec struct {
	repository string // ghcr.io/nodeagent/nodeagent
	version    string
	revision   string
	source     string // the org.opencontainers.image.source URL
	licenses   string // an SPDX expression
	// created is the commit time (SOURCE_DATE_EPOCH): the image's creation
	// time, every history entry's and every file's mtime.
	created  time.Time
	caBundle string // path of the build machine's CA bundle
	// binaries are the static nodeagent binaries, one per platform, in
	// the order of the index.
	binaries []platformBinary
}

type platformBinary struct {
	platform v1.Platform
	path     string
}

// parsePlatformBinary parses os/arch[/variant]=path.
func parsePlatformBinary(s string) (platformBinary, error) {
	plat, path, ok := strings.Cut(s, "=")
	if !ok || path == "" {
		return platformBinary{}, fmt.Errorf("%q: want os/arch=path", s)
	}
	parts := strings.Split(plat, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platformBinary{}, fmt.Errorf("%q: want os/arch[/variant]=path", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if p.Architecture == "arm64" && p.Variant == "" {
		// What Docker and containerd call plain arm64 (GOARM64 v8.0).
		p.Variant = "v8"
	}
	return platformBinary{platform: p, path: path}, nil
}

func (s spec) tag() (name.Tag, error) {
	t, err := name.NewTag(s.repository + ":" + s.version)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image tag %s:%s: %w", s.repository, s.version, err)
	}
	return t, nil
}

// labels are the OCI annotations of the image, in its config (what docker
// inspect and ctr show) and on its index (what registries show).
func (s spec) labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":    "nodeagent",
		"org.opencontainers.image.version":  s.version,
		"org.opencontainers.image.revision": s.revision,
		"org.opencontainers.image.created":  s.created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.source":   s.source,
		"org.opencontainers.image.licenses": s.licenses,
	}
}

// platformImage is one platform's image of the index.
type platformImage struct {
	platform v1.Platform
	image    v1.Image
}

// build makes the multi-platform image index and its images.
func build(s spec) (v1.ImageIndex, []platformImage, error) {
	if len(s.binaries) == 0 {
		return nil, nil, fmt.Errorf("no binary given")
	}
	ca, err := os.ReadFile(s.caBundle)
	if err != nil {
		return nil, nil, fmt.Errorf("CA bundle: %w", err)
	}
	// The same base layer for every platform: it holds no binary.
	base, err := newLayer(s.created, []entry{
		dir("etc/"),
		file("etc/group", 0o644, group),
		file("etc/passwd", 0o644, passwd),
		dir("etc/ssl/"),
		dir("etc/ssl/certs/"),
		file(caBundlePath, 0o644, ca),
	})
	if err != nil {
		return nil, nil, err
	}
	created := v1.Time{Time: s.created.UTC()}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var images []platformImage
	for _, b := range s.binaries {
		bin, err := os.ReadFile(b.path)
		if err != nil {
			return nil, nil, fmt.Errorf("binary for %s: %w", b.platform, err)
		}
		top, err := newLayer(s.created, []entry{dir("bin/"), file(binaryPath, 0o755, bin)})
		if err != nil {
			return nil, nil, err
		}
		img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		img, err = mutate.Append(img,
			mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "hack/image: /etc/passwd, /etc/group (nobody, nogroup), /" + caBundlePath + " (Debian ca-certificates)"}},
			mutate.Addendum{Layer: top, History: v1.History{Created: created, CreatedBy: "hack/image: /" + binaryPath + " (static, CGO_ENABLED=0)"}},
		)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.platform, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.platform, err)
		}
		cf = cf.DeepCopy()
		cf.Created = created
		cf.OS, cf.Architecture, cf.Variant = b.platform.OS, b.platform.Architecture, b.platform.Variant
		cf.Config = v1.Config{
			User:         strconv.Itoa(uid) + ":" + strconv.Itoa(gid),
			Entrypoint:   []string{"/" + binaryPath},
			ExposedPorts: map[string]struct{}{},
			Labels:       s.labels(),
		}
		for _, p := range exposedPorts {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.platform, err)
		}
		plat := b.platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &plat}})
		images = append(images, platformImage{platform: plat, image: img})
	}
	idx, ok := mutate.Annotations(idx, s.labels()).(v1.ImageIndex)
	if !ok {
		return nil, nil, fmt.Errorf("annotating the index: not an index")
	}
	return idx, images, nil
}

// entry is one file or directory of a layer.
type entry struct {
	name string
	mode int64
	data []byte
	dir  bool
}

func dir(name string) entry { return entry{name: name, mode: 0o755, dir: true} }
func file(name string, mode int64, data []byte) entry {
	return entry{name: name, mode: mode, data: data}
}

// newLayer writes entries, owned by root and dated mtime, into a gzip
// layer. Nothing of the build machine (owner, time, umask) gets in.
func newLayer(mtime time.Time, entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:     e.name,
			Mode:     e.mode,
			ModTime:  mtime.UTC(),
			Typeflag: tar.TypeReg,
			Size:     int64(len(e.data)),
			Format:   tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// output names what write wrote.
type output struct {
	layout   string
	index    v1.Hash
	tarballs []string
}

// write replaces out with an OCI image layout (out/oci: the index, tagged
// by annotations) and one docker-archive tarball per platform
// (out/nodeagent-<version>-<os>-<arch>.tar), which docker load, ctr
// images import and kind load image-archive all read.
func write(s spec, idx v1.ImageIndex, images []platformImage, out string) (output, error) {
	tag, err := s.tag()
	if err != nil {
		return output{}, err
	}
	if err := os.RemoveAll(out); err != nil {
		return output{}, fmt.Errorf("%s: %w", out, err)
	}
	o := output{layout: filepath.Join(out, "oci")}
	p, err := layout.Write(o.layout, empty.Index)
	if err != nil {
		return output{}, fmt.Errorf("OCI layout %s: %w", o.layout, err)
	}
	// Named as BuildKit's OCI exporter names images: containerd reads the
	// full name, skopeo and others the tag.
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          tag.String(),
		"org.opencontainers.image.ref.name": tag.TagStr(),
	})); err != nil {
		return output{}, fmt.Errorf("OCI layout %s: %w", o.layout, err)
	}
	if o.index, err = idx.Digest(); err != nil {
		return output{}, err
	}
	for _, pi := range images {
		arch := pi.platform.Architecture
		if pi.platform.Variant != "" && arch != "arm64" {
			arch += pi.platform.Variant
		}
		path := filepath.Join(out, fmt.Sprintf("nodeagent-%s-%s-%s.tar", s.version, pi.platform.OS, arch))
		if err := tarball.WriteToFile(path, tag, pi.image); err != nil {
			return output{}, fmt.Errorf("%s: %w", path, err)
		}
		o.tarballs = append(o.tarballs, path)
	}
	return o, nil
}
