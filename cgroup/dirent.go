package cgroup

import (
	"encoding/binary"
	"fmt"
)

// A buffer filled by getdents64(2) holds linux_dirent64 records:
//
//	u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[] (NUL-terminated, padded)
//
// Walk parses them itself rather than through os.ReadDir because it needs
// d_ino (to notice a cgroup recreated under the same path) and because a
// cgroup directory lists ~50 control files whose DirEntry values os.ReadDir
// would allocate on every scrape.

const direntHeader = 19 // offset of d_name

// The d_type values Walk acts on.
const (
	dtUnknown = 0
	dtDir     = 4
)

// parseDirents calls fn for each record in buf. A record whose length does
// not fit the buffer is an error; the kernel never writes one.
func parseDirents(buf []byte, fn func(ino uint64, typ uint8, name []byte)) error {
	for len(buf) > 0 {
		if len(buf) < direntHeader {
			return fmt.Errorf("%w: truncated dirent header (%d bytes)", ErrParse, len(buf))
		}
		reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if reclen <= direntHeader || reclen > len(buf) {
			return fmt.Errorf("%w: dirent record length %d out of range (%d bytes left)", ErrParse, reclen, len(buf))
		}
		ino := binary.NativeEndian.Uint64(buf[0:8])
		typ := buf[18]
		name := buf[direntHeader:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		fn(ino, typ, name)
		buf = buf[reclen:]
	}
	return nil
}
