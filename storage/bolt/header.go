package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The header of a bbolt file (go.etcd.io/bbolt/internal/common, version
// 2), in the machine's byte order: pages 0 and 1 hold a meta each, after
// the 16-byte page header: magic u32, version u32, page size u32, flags
// u32, root bucket (root page u64, sequence u64), freelist page u64, high
// water mark u64 (the pages in use are 0 .. hwm-1), txid u64, and an
// FNV-64a checksum u64 of the 56 bytes before it. bbolt writes the meta of
// transaction t to page t%2 and uses the valid one with the higher txid.
//
// The freelist page (flags 0x10) lists the free page numbers as u64s after
// its header; a list of 0xFFFF or more has 0xFFFF as its count and the
// real count in the first u64.
const (
	metaMagic        = 0xED0CDAED
	metaVersion      = 2
	metaSize         = 64
	metaSummed       = 56
	freelistPageFlag = 0x10
	// noFreelist is the freelist page number of a file written with
	// NoFreelistSync (the flow file): bbolt rebuilds the list at open.
	noFreelist = ^uint64(0)
	// bigFreelist is the count that says the real count comes first.
	bigFreelist = 0xFFFF
)

// fileMeta is one meta page of a bbolt file.
type fileMeta struct {
	magic, version, pageSize uint32
	root, freelist, hwm      uint64
	txid                     uint64
	// invalid says why bbolt would not use it ("" when it would).
	invalid string
}

func parseMeta(b []byte) fileMeta {
	ne := binary.NativeEndian
	m := fileMeta{
		magic: ne.Uint32(b[0:]), version: ne.Uint32(b[4:]), pageSize: ne.Uint32(b[8:]),
		root: ne.Uint64(b[16:]), freelist: ne.Uint64(b[32:]), hwm: ne.Uint64(b[40:]), txid: ne.Uint64(b[48:]),
	}
	h := fnv.New64a()
	h.Write(b[:metaSummed])
	switch {
	case m.magic != metaMagic:
		m.invalid = "not a bbolt meta page"
	case m.version != metaVersion:
		m.invalid = fmt.Sprintf("version %d, not %d", m.version, metaVersion)
	case ne.Uint64(b[metaSummed:]) != h.Sum64():
		m.invalid = "checksum mismatch"
	}
	return m
}

// fileHeader is what a bbolt file's meta pages say, read with plain file
// reads.
type fileHeader struct {
	size       int64 // of the file
	pageSize   int64
	metas      [2]fileMeta
	chosen     int // the meta bbolt will use
	chosenNote string
}

func (h *fileHeader) meta() fileMeta { return h.metas[h.chosen] }

// readHeader reads both meta pages of the bbolt file f as bbolt does when
// it opens it (the page size from the first valid meta, then the meta with
// the higher txid when it is valid, else the other), and returns the
// header, or a one-line reason why bbolt could not use any. A file of size
// 0 is one bbolt will create: readHeader is not called for it.
func readHeader(f *os.File) (*fileHeader, string, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	h := &fileHeader{size: fi.Size()}
	// bbolt reads 4 KiB at 0 and, when that is no valid meta, at 1 KiB,
	// 2 KiB, ... 16 MiB for the second one; failing both, it assumes the
	// system's page size.
	found := false
	buf := make([]byte, 4096)
	for _, pos := range append([]int64{0}, secondMetaOffsets(h.size)...) {
		n, err := f.ReadAt(buf, pos)
		if err != nil && !(errors.Is(err, io.EOF) && pos > 0 && int64(n) == h.size-pos) {
			if !errors.Is(err, io.EOF) {
				return nil, "", fmt.Errorf("read meta page: %w", err)
			}
			continue
		}
		if n >= pageHeaderSize+metaSize {
			if m := parseMeta(buf[pageHeaderSize:]); m.invalid == "" {
				h.pageSize, found = int64(m.pageSize), true
				break
			}
		}
	}
	if !found {
		h.pageSize = int64(os.Getpagesize())
	}
	if h.pageSize < 1024 || h.size < 2*h.pageSize {
		return nil, fmt.Sprintf("no valid meta page (the file is %d bytes)", h.size), nil
	}
	for i := range h.metas {
		b := make([]byte, metaSize)
		if _, err := f.ReadAt(b, int64(i)*h.pageSize+pageHeaderSize); err != nil {
			return nil, "", fmt.Errorf("read meta page %d: %w", i, err)
		}
		h.metas[i] = parseMeta(b)
	}
	m0, m1 := h.metas[0], h.metas[1]
	if m0.invalid != "" && m1.invalid != "" {
		return nil, fmt.Sprintf("both meta pages are invalid (%s; %s)", m0.invalid, m1.invalid), nil
	}
	// bbolt compares the txids before it validates.
	a, b := 0, 1
	if m1.txid > m0.txid {
		a, b = 1, 0
	}
	h.chosen = a
	if h.metas[a].invalid != "" {
		h.chosen = b
		h.chosenNote = fmt.Sprintf(" (meta page %d, the newer, is invalid: %s)", a, h.metas[a].invalid)
	}
	return h, "", nil
}

// secondMetaOffsets are where bbolt looks for the second meta page when
// the first is invalid.
func secondMetaOffsets(size int64) []int64 {
	var offs []int64
	for i := range 15 {
		pos := int64(1024) << i
		if pos >= size-1024 {
			break
		}
		offs = append(offs, pos)
	}
	return offs
}

// validMeta checks what the meta says about the file against the file.
func (h *fileHeader) validMeta(m fileMeta) string {
	switch {
	case int64(m.pageSize) != h.pageSize:
		return fmt.Sprintf("page size %d, but the file's is %d", m.pageSize, h.pageSize)
	case m.hwm < 3 || m.hwm > uint64(h.size/h.pageSize):
		return fmt.Sprintf("the file is %d bytes, but its header counts %d pages of %d (truncated?)", h.size, m.hwm, h.pageSize)
	case m.root < 2 || m.root >= m.hwm:
		return fmt.Sprintf("root page %d out of bounds (the file has %d pages)", m.root, m.hwm)
	case m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.hwm):
		return fmt.Sprintf("freelist page %d out of bounds (the file has %d pages)", m.freelist, m.hwm)
	}
	return ""
}

// freelistChunk bounds what one read of the freelist holds.
const freelistChunk = 64 << 10

// readFreelist validates the freelist page of m with plain file reads,
// calling visit (when not nil) with each free page number in order: the
// page must be a freelist page of its own number, its overflow pages and
// its count must fit in the file, and the page numbers must lie in
// [2, hwm), sorted and unique. It returns a one-line reason for the first
// problem, or for the first that visit returns. bbolt trusts all of this:
// a damaged count makes it allocate what the count says (a flipped high
// bit: out of memory, a fatal error no recover catches), a damaged
// overflow makes its check loop for minutes, a page number 0 or 1 in the
// list makes the first write that reuses it overwrite a meta page.
// It also returns the freelist page's overflow count.
func readFreelist(f *os.File, pageSize int64, m fileMeta, visit func(id uint64) string) (overflow uint64, reason string, err error) {
	if m.freelist == noFreelist {
		return 0, "", nil
	}
	id := m.freelist
	fail := func(format string, args ...any) (uint64, string, error) {
		return 0, fmt.Sprintf("freelist page %d: ", id) + fmt.Sprintf(format, args...), nil
	}
	head := make([]byte, pageHeaderSize+8)
	if _, err := f.ReadAt(head, int64(id)*pageSize); err != nil {
		return 0, "", fmt.Errorf("read freelist page %d: %w", id, err)
	}
	ne := binary.NativeEndian
	flags, count := ne.Uint16(head[8:]), uint64(ne.Uint16(head[10:]))
	overflow = uint64(ne.Uint32(head[12:]))
	switch {
	case ne.Uint64(head) != id:
		return fail("says it is page %d", ne.Uint64(head))
	case flags != freelistPageFlag:
		return fail("not a freelist page (type %#x)", flags)
	case overflow >= m.hwm-id:
		return fail("%d overflow pages run past the end of the file", overflow)
	}
	first := uint64(0) // index of the first page number
	if count == bigFreelist {
		count, first = ne.Uint64(head[pageHeaderSize:]), 1
		if count < bigFreelist {
			return fail("a long list's count is %d, less than %d", count, bigFreelist)
		}
	}
	room := (uint64((1+overflow))*uint64(pageSize) - pageHeaderSize) / 8
	if count > room-first {
		return fail("%d free pages do not fit in %d pages", count, 1+overflow)
	}
	buf := make([]byte, min(count*8, freelistChunk))
	off := int64(id)*pageSize + pageHeaderSize + int64(first*8)
	prev := uint64(1)
	for done := uint64(0); done < count; {
		n := min(count-done, uint64(len(buf)/8))
		b := buf[:n*8]
		if _, err := f.ReadAt(b, off+int64(done*8)); err != nil {
			return 0, "", fmt.Errorf("read freelist page %d: %w", id, err)
		}
		for i := range n {
			free := ne.Uint64(b[i*8:])
			switch {
			case free < 2 || free >= m.hwm:
				return fail("lists page %d, out of bounds (the file has %d pages)", free, m.hwm)
			case free <= prev:
				return fail("lists page %d after page %d (not sorted, or twice)", free, prev)
			}
			prev = free
			if visit != nil {
				if reason := visit(free); reason != "" {
					return 0, reason, nil
				}
			}
		}
		done += n
	}
	return overflow, "", nil
}

// checkHeader is the check bbolt.Open needs before it reads the file:
// the meta pages and the freelist page it will load.
func checkHeader(f *os.File) (string, error) {
	h, reason, err := readHeader(f)
	if reason != "" || err != nil {
		return reason, err
	}
	if reason := h.validMeta(h.meta()); reason != "" {
		return fmt.Sprintf("meta page %d%s: %s", h.chosen, h.chosenNote, reason), nil
	}
	if _, reason, err := readFreelist(f, h.pageSize, h.meta(), nil); reason != "" || err != nil {
		return reason + h.chosenNote, err
	}
	return "", nil
}
