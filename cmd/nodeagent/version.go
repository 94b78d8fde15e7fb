package main

import (
	"runtime/debug"

	"github.com/prometheus/common/version"

	"github.com/nodeagent/nodeagent"
)

// buildVersion is the part of prometheus/common/version's build variables
// that a plain go build can know without -ldflags.
type buildVersion struct {
	Version   string
	Revision  string
	BuildDate string
}

// completeVersion fills what -ldflags -X left empty: the version from the
// VERSION file, the revision and commit time from the VCS stamp the Go
// toolchain writes into every build made inside a git checkout. A dirty
// tree adds "-modified" to the revision, the suffix prometheus/common
// itself uses. Values given with -X (make build) win. BuildDate is the
// commit time, not the wall clock, so that two builds of one commit agree.
func completeVersion(have buildVersion, versionFile string, bi *debug.BuildInfo) buildVersion {
	if have.Version == "" {
		have.Version = versionFile
	}
	if bi == nil {
		return have
	}
	var rev, commitTime string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			commitTime = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if have.Revision == "" && rev != "" {
		have.Revision = rev
		if modified {
			have.Revision += "-modified"
		}
	}
	if have.BuildDate == "" {
		have.BuildDate = commitTime
	}
	return have
}

// stampVersion completes prometheus/common/version's variables before
// anything reads them (--version, the landing page, nodeagent_build_info).
func stampVersion() {
	bi, _ := debug.ReadBuildInfo()
	v := completeVersion(buildVersion{version.Version, version.Revision, version.BuildDate}, nodeagent.Version(), bi)
	version.Version, version.Revision, version.BuildDate = v.Version, v.Revision, v.BuildDate
}
