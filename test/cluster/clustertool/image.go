package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// imageCommand writes a one-layer image holding one static program, as
// the tarball `ctr images import` reads.
func imageCommand(fs *flag.FlagSet) func(context.Context) error {
	binary := fs.String("binary", "", "the static program to put in the image")
	path := fs.String("path", "/pause", "its path in the image, also the entrypoint")
	ref := fs.String("ref", "registry.k8s.io/pause:3.10", "the image's name")
	out := fs.String("o", "", "the tarball to write")
	return func(context.Context) error {
		if *binary == "" || *out == "" {
			return errors.New("-binary and -o are required")
		}
		prog, err := os.ReadFile(*binary)
		if err != nil {
			return err
		}
		img, err := programImage(prog, *path)
		if err != nil {
			return err
		}
		tag, err := name.NewTag(*ref)
		if err != nil {
			return fmt.Errorf("-ref %q: %w", *ref, err)
		}
		if err := tarball.WriteToFile(*out, tag, img); err != nil {
			return fmt.Errorf("%s: %w", *out, err)
		}
		return nil
	}
}

// programImage is a linux/amd64 image with prog at path (mode 0755) as its
// entrypoint; the timestamps are zero so the same program gives the same
// digest.
func programImage(prog []byte, path string) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: strings.TrimPrefix(path, "/"), Mode: 0o755, Size: int64(len(prog)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(prog); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = []string{path}
	cfg.Config.WorkingDir = "/"
	return mutate.ConfigFile(img, cfg)
}
