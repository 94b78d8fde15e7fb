// Package nodeagent is the module root. It holds one thing: the VERSION
// file, embedded, so that a plain go build, go run or go install of
// cmd/nodeagent knows its version without make's -ldflags.
//
// Why a package here: //go:embed reads only files in or below the
// directory of the package that embeds them, and VERSION stays at the root
// where make, the image build and release tooling read it. Moving it under
// cmd/nodeagent would hide it from them; a copy made by go generate could
// go stale.
package nodeagent

import (
	_ "embed"
	"strings"
)

//go:embed VERSION
var versionFile string

// Version is the content of the VERSION file, without surrounding space.
func Version() string { return strings.TrimSpace(versionFile) }
