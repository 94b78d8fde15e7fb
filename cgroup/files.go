package cgroup

import "strings"

// File is one kernel file of a cgroup that nodeagent reads.
type File uint8

// The files a Group can read. Core files exist in every cgroup v2 directory,
// so a missing core file means the cgroup went away; every other file may be
// absent (a controller not enabled for the cgroup, an older kernel, the root
// cgroup, swap accounting off).
const (
	FileCgroupProcs File = iota // core
	FileCPUStat                 // core
	FileCPUMax
	FileCPUWeight
	FileCPUPressure
	FileMemoryCurrent
	FileMemoryStat
	FileMemoryPeak
	FileMemoryMax
	FileMemoryMin
	FileMemorySwapCurrent
	FileMemorySwapMax
	FileMemoryEvents
	FileMemoryPressure
	FileIOStat
	FileIOPressure
	FilePidsCurrent
	FilePidsMax
	// The files below exist only in a hybrid host's v1 cpu hierarchy
	// (hybrid.go), where cgroup v2 has them in cpu.stat and cpu.max.
	FileCPUStatV1   // v1 cpu.stat: the CFS throttling counters
	FileCPUPeriodV1 // cpu.cfs_period_us
	numFiles
)

var fileNames = [numFiles]string{
	FileCgroupProcs:       "cgroup.procs",
	FileCPUStat:           "cpu.stat",
	FileCPUMax:            "cpu.max",
	FileCPUWeight:         "cpu.weight",
	FileCPUPressure:       "cpu.pressure",
	FileMemoryCurrent:     "memory.current",
	FileMemoryStat:        "memory.stat",
	FileMemoryPeak:        "memory.peak",
	FileMemoryMax:         "memory.max",
	FileMemoryMin:         "memory.min",
	FileMemorySwapCurrent: "memory.swap.current",
	FileMemorySwapMax:     "memory.swap.max",
	FileMemoryEvents:      "memory.events",
	FileMemoryPressure:    "memory.pressure",
	FileIOStat:            "io.stat",
	FileIOPressure:        "io.pressure",
	FilePidsCurrent:       "pids.current",
	FilePidsMax:           "pids.max",
	FileCPUStatV1:         "cpu.stat (v1)",
	FileCPUPeriodV1:       "cpu.cfs_period_us",
}

// String is the file's name in the cgroup directory.
func (f File) String() string {
	if f < numFiles {
		return fileNames[f]
	}
	return "unknown"
}

func (f File) core() bool { return f == FileCgroupProcs || f == FileCPUStat }

// FileSet is a set of Files.
type FileSet uint32

// MemoryControllerFiles are the files of the memory controller: a cgroup
// has them only while the controller is enabled for it. (memory.pressure
// is a core file, in every cgroup.)
const MemoryControllerFiles = FileSet(1<<FileMemoryCurrent | 1<<FileMemoryStat | 1<<FileMemoryPeak |
	1<<FileMemoryMax | 1<<FileMemoryMin | 1<<FileMemorySwapCurrent | 1<<FileMemorySwapMax | 1<<FileMemoryEvents)

// AllFiles holds every File of a cgroup v2 hierarchy.
const AllFiles FileSet = 1<<(FilePidsMax+1) - 1

// v1OnlyFiles are the Files that only a hybrid host's v1 hierarchies have.
const v1OnlyFiles = FileSet(1<<FileCPUStatV1 | 1<<FileCPUPeriodV1)

// Files returns the set of the given files.
func Files(fs ...File) FileSet {
	var s FileSet
	for _, f := range fs {
		s |= 1 << f
	}
	return s
}

// Has says whether f is in s.
func (s FileSet) Has(f File) bool { return s&(1<<f) != 0 }

// Names lists the set's file names.
func (s FileSet) Names() []string {
	var names []string
	for f := File(0); f < numFiles; f++ {
		if s.Has(f) {
			names = append(names, f.String())
		}
	}
	return names
}

// String lists the set's file names.
func (s FileSet) String() string { return "{" + strings.Join(s.Names(), " ") + "}" }
