// Command image writes nodeagent's container image without a container
// engine: FROM scratch, the static binary per platform, a CA bundle, a
// passwd and group naming the non-root user, as one multi-platform OCI
// image layout plus a docker-archive tarball per platform. make image runs
// it; docs/image.md says what is in the image and how to load it.
//
// The output depends only on its inputs: every time in it is the commit
// time (SOURCE_DATE_EPOCH), every file is owned by root, so two builds of
// one commit give the same digests.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s spec
	var out, epoch string
	fs.StringVar(&out, "out", "bin/image", "output directory (replaced)")
	fs.StringVar(&s.repository, "repository", "ghcr.io/nodeagent/nodeagent", "image repository; the tag is the version")
	fs.StringVar(&s.version, "version", "", "nodeagent's version (the VERSION file)")
	fs.StringVar(&s.revision, "revision", "", "the git commit built")
	fs.StringVar(&s.source, "source", "https://github.com/nodeagent/nodeagent", "the source repository URL")
	fs.StringVar(&s.licenses, "licenses", "", "the licence, an SPDX expression")
	fs.StringVar(&epoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "commit time in seconds since 1970 (default $SOURCE_DATE_EPOCH)")
	fs.StringVar(&s.caBundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates to include (Debian's ca-certificates bundle)")
	fs.Func("binary", "os/arch[/variant]=path of a static nodeagent binary; repeat per platform", func(v string) error {
		b, err := parsePlatformBinary(v)
		if err == nil {
			s.binaries = append(s.binaries, b)
		}
		return err
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var errs []error
	for flagName, v := range map[string]string{"--version": s.version, "--revision": s.revision, "--licenses": s.licenses, "--source-date-epoch": epoch} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", flagName))
		}
	}
	if epoch != "" {
		secs, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("--source-date-epoch %q: %w", epoch, err))
		}
		s.created = time.Unix(secs, 0).UTC()
	}
	if len(s.binaries) == 0 {
		errs = append(errs, errors.New("--binary: at least one is required"))
	}
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "image: %v\n", errors.Join(errs...))
		return 2
	}

	idx, images, err := build(s)
	if err != nil {
		fmt.Fprintf(stderr, "image: %v\n", err)
		return 1
	}
	o, err := write(s, idx, images, out)
	if err != nil {
		fmt.Fprintf(stderr, "image: %v\n", err)
		return 1
	}
	tag, _ := s.tag()
	fmt.Fprintf(stdout, "%s\n  index %s (OCI layout %s)\n", tag, o.index, o.layout)
	for i, pi := range images {
		d, err := pi.image.Digest()
		if err != nil {
			fmt.Fprintf(stderr, "image: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "  %-14s %s  %s\n", pi.platform.String(), d, o.tarballs[i])
	}
	return 0
}
