package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	bbolt "go.etcd.io/bbolt"
)

// checkTx checks the file under tx: first that every page its trees
// reference can be read safely (checkPages), then bbolt's consistency check
// (freelist, references, key order). It returns a one-line reason, or ""
// when the file is consistent. tx must come from a guardedDB, so that a
// damaged page the walk itself meets is an error and not a crash.
//
// bbolt's check alone is not safe on a damaged file: it runs in a goroutine
// of its own where a page number pointing outside the file is a fatal fault
// and a page that points to its parent recurses until the stack overflows.
// checkPages reads the same pages with plain file reads first and stops at
// either.
func checkTx(ctx context.Context, tx *bbolt.Tx, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("check %s: %w", path, err)
	}
	defer f.Close()
	if err := readThrough(ctx, f); err != nil {
		return "", fmt.Errorf("check %s: %w", path, err)
	}
	if reason, err := checkPages(ctx, f, tx); reason != "" || err != nil {
		return reason, err
	}
	first, more := "", 0
	for err := range tx.Check() {
		if first == "" {
			// bbolt's check reports the panics it recovers as "panic: ...".
			first = strings.TrimPrefix(err.Error(), "panic: ")
		} else {
			more++ // drain the channel, or bbolt's goroutine blocks for ever
		}
	}
	switch {
	case first == "":
		return "", nil
	case more > 0:
		return fmt.Sprintf("consistency check: %s (and %d more problems)", oneLine(first), more), nil
	default:
		return "consistency check: " + oneLine(first), nil
	}
}

// readThrough reads the file from start to end, so that it sits in the page
// cache before the checks read its pages in tree order, which from a cold
// cache are random reads: on a 356 MiB file the check took 6.1-7.3 s
// without this read and 1.2-2.2 s with it (and 0.4-0.5 s either way when
// the file was cached already).
func readThrough(ctx context.Context, f *os.File) error {
	buf := make([]byte, 1<<20)
	for off := int64(0); ; off += int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := f.ReadAt(buf, off)
		if err == io.EOF || (err == nil && n < len(buf)) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Page layout of bbolt files (go.etcd.io/bbolt/internal/common), version 2,
// in the machine's byte order: a 16-byte header (id u64, flags u16, count
// u16, overflow u32) and count 16-byte elements. A branch element is (pos
// u32, ksize u32, child page u64), a leaf element (flags u32, pos u32,
// ksize u32, vsize u32); pos counts from the element itself. A leaf element
// flagged as a bucket holds (root page u64, sequence u64), followed by the
// bucket's own page when root is 0 (an inline bucket).
const (
	pageHeaderSize  = 16
	pageElementSize = 16
	branchPageFlag  = 0x01
	leafPageFlag    = 0x02
	bucketLeafFlag  = 0x01
	bucketHeadSize  = 16
)

// checkPages walks every tree of the file from the root bucket, reading
// each page from the file (never through bbolt's memory map), and reports
// the first page that is out of bounds, referenced twice, of the wrong
// kind, or whose elements point outside it. It stops when ctx ends.
func checkPages(ctx context.Context, f *os.File, tx *bbolt.Tx) (string, error) {
	pageSize := int64(tx.DB().Info().PageSize)
	hwm := uint64(tx.Size() / pageSize) // pages in use: 0 .. hwm-1
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if fi.Size() < tx.Size() {
		return fmt.Sprintf("the file is %d bytes, shorter than the %d its header promises (truncated?)", fi.Size(), tx.Size()), nil
	}
	w := &pageWalk{f: f, pageSize: pageSize, hwm: hwm, seen: make([]uint64, hwm/64+1)}
	w.push(uint64(tx.Cursor().Bucket().RootPage()))
	for n := 0; len(w.todo) > 0; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return "", err
			}
		}
		id := w.todo[len(w.todo)-1]
		w.todo = w.todo[:len(w.todo)-1]
		if reason, err := w.page(id); reason != "" || err != nil {
			return reason, err
		}
	}
	return "", nil
}

type pageWalk struct {
	f        *os.File
	pageSize int64
	hwm      uint64
	seen     []uint64 // bit set of pages met
	todo     []uint64
	buf      []byte
}

func (w *pageWalk) push(id uint64) { w.todo = append(w.todo, id) }

func (w *pageWalk) mark(id uint64) bool {
	word, bit := id/64, uint64(1)<<(id%64)
	if w.seen[word]&bit != 0 {
		return false
	}
	w.seen[word] |= bit
	return true
}

// maxNodeBytes bounds the page (with its overflow) the walk reads at once:
// far above any record Keyport writes, far below what a damaged overflow
// count could ask for.
const maxNodeBytes = 256 << 20

// page checks one page (with its overflow) and queues what it references.
func (w *pageWalk) page(id uint64) (string, error) {
	if id < 2 || id >= w.hwm {
		return fmt.Sprintf("page %d: out of bounds (the file has %d pages)", id, w.hwm), nil
	}
	if w.buf == nil {
		w.buf = make([]byte, w.pageSize)
	}
	p := w.buf[:w.pageSize]
	if _, err := w.f.ReadAt(p, int64(id)*w.pageSize); err != nil {
		return "", fmt.Errorf("read page %d: %w", id, err)
	}
	ne := binary.NativeEndian
	if got := ne.Uint64(p); got != id {
		return fmt.Sprintf("page %d: says it is page %d", id, got), nil
	}
	overflow := uint64(ne.Uint32(p[12:]))
	if overflow >= w.hwm-id || (1+int64(overflow))*w.pageSize > maxNodeBytes {
		return fmt.Sprintf("page %d: %d overflow pages run past the end of the file", id, overflow), nil
	}
	for i := id; i <= id+overflow; i++ {
		if !w.mark(i) {
			return fmt.Sprintf("page %d: referenced twice (a loop or a shared page)", i), nil
		}
	}
	if overflow > 0 {
		size := (1 + int64(overflow)) * w.pageSize
		if int64(cap(w.buf)) < size {
			w.buf = make([]byte, size)
		}
		p = w.buf[:size]
		if _, err := w.f.ReadAt(p, int64(id)*w.pageSize); err != nil {
			return "", fmt.Errorf("read page %d: %w", id, err)
		}
	}
	if reason := w.nodePage(p, false); reason != "" {
		return fmt.Sprintf("page %d: %s", id, reason), nil
	}
	return "", nil
}

// nodePage checks a branch or leaf page held in p (a file page, or an
// inline bucket's page inside a value) and queues the pages it references.
func (w *pageWalk) nodePage(p []byte, inline bool) string {
	ne := binary.NativeEndian
	if len(p) < pageHeaderSize {
		return "shorter than a page header"
	}
	flags, count := ne.Uint16(p[8:]), int(ne.Uint16(p[10:]))
	if pageHeaderSize+count*pageElementSize > len(p) {
		return fmt.Sprintf("%d elements do not fit in it", count)
	}
	switch {
	case flags == branchPageFlag && !inline:
		if count == 0 {
			return "branch without elements"
		}
		for i := range count {
			at := pageHeaderSize + i*pageElementSize
			pos, ksize := int64(ne.Uint32(p[at:])), int64(ne.Uint32(p[at+4:]))
			if int64(at)+pos+ksize > int64(len(p)) {
				return fmt.Sprintf("branch element %d points outside the page", i)
			}
			w.push(ne.Uint64(p[at+8:]))
		}
	case flags == leafPageFlag:
		for i := range count {
			at := pageHeaderSize + i*pageElementSize
			eflags := ne.Uint32(p[at:])
			pos, ksize, vsize := int64(ne.Uint32(p[at+4:])), int64(ne.Uint32(p[at+8:])), int64(ne.Uint32(p[at+12:]))
			end := int64(at) + pos + ksize + vsize
			if end > int64(len(p)) {
				return fmt.Sprintf("leaf element %d points outside the page", i)
			}
			if eflags&bucketLeafFlag == 0 {
				continue
			}
			// An inline bucket never holds buckets.
			if inline {
				return fmt.Sprintf("element %d: a bucket inside an inline bucket", i)
			}
			v := p[end-vsize : end]
			if len(v) < bucketHeadSize {
				return fmt.Sprintf("bucket %d: value too short", i)
			}
			if root := ne.Uint64(v); root != 0 {
				w.push(root)
			} else if reason := w.nodePage(v[bucketHeadSize:], true); reason != "" {
				return fmt.Sprintf("inline bucket %d: %s", i, reason)
			}
		}
	default:
		return fmt.Sprintf("unexpected page type %#x in a tree", flags)
	}
	return ""
}
