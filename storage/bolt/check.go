package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"os"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// checkTx checks the snapshot of the file that tx reads (checkSnapshot).
// tx must come from a guardedDB.
func checkTx(ctx context.Context, tx *bbolt.Tx, path string) (string, error) {
	return checkSnapshot(ctx, tx, path, nil)
}

// checkFile checks the file at path, which no one writes (a flow file
// before it is opened for writing, a copy), through a read-only handle
// that waits for a writer's lock at most timeout. The reason is "" when
// the file is consistent; a file bbolt cannot open at all is an error
// (a DamagedError when it is damaged).
func checkFile(ctx context.Context, path string, timeout time.Duration) (string, error) {
	db, err := openBolt(path, &bbolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return "", err
	}
	defer db.Close()
	var reason string
	err = newGuarded(db, path, slog.New(slog.DiscardHandler)).View(func(tx *bbolt.Tx) error {
		reason, err = checkTx(ctx, tx, path)
		return err
	})
	return reason, err
}

// checkSnapshot checks the file at path as tx sees it, with plain file
// reads (never through bbolt's memory map), and returns a one-line reason
// for the first problem, or "" when the file is consistent: every tree
// from the root bucket down (each page within the file, of the right
// kind, referenced once, its elements inside it, its keys in order and
// within the range its parent gives it), and the freelist page (see
// readFreelist), whose pages and the pages in use must together be every
// page of the file, each exactly once. That is what bbolt's tx.Check
// checks, which is not used: on a damaged file it faults or recurses
// without end in a goroutine no recover reaches, it loops for minutes over
// a damaged freelist, and while other transactions write it reads bbolt's
// live freelist (unsafe, and the pages they free look like damage).
//
// This check is safe while writers commit: tx keeps every page of its
// snapshot from being reused until it ends, and the snapshot's meta page,
// which the next commits but one overwrite, is read first; snapped (when
// not nil) is called once it has been. It stops when ctx ends.
func checkSnapshot(ctx context.Context, tx *bbolt.Tx, path string, snapped func()) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if snapped != nil {
			snapped()
		}
		return "", fmt.Errorf("check %s: %w", path, err)
	}
	defer f.Close()
	h, m, reason, err := snapshotMeta(f, tx)
	if snapped != nil {
		snapped()
	}
	if reason != "" || err != nil {
		return reason, err
	}
	if err := readThrough(ctx, f); err != nil {
		return "", fmt.Errorf("check %s: %w", path, err)
	}
	return checkPages(ctx, f, h.pageSize, m)
}

// snapshotMeta reads the meta page of tx's snapshot from the file.
func snapshotMeta(f *os.File, tx *bbolt.Tx) (*fileHeader, fileMeta, string, error) {
	h, reason, err := readHeader(f)
	if reason != "" || err != nil {
		return nil, fileMeta{}, reason, err
	}
	for i, m := range h.metas {
		if m.invalid != "" || m.txid != uint64(tx.ID()) {
			continue
		}
		if reason := h.validMeta(m); reason != "" {
			return nil, m, fmt.Sprintf("meta page %d: %s", i, reason), nil
		}
		if m.root != uint64(tx.Cursor().Bucket().RootPage()) || int64(m.hwm)*h.pageSize != tx.Size() {
			break
		}
		return h, m, "", nil
	}
	return nil, fileMeta{}, "", fmt.Errorf("the meta page of transaction %d is no longer in the file", tx.ID())
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

// checkPages walks every tree of the snapshot m from its root bucket,
// then its freelist (see checkSnapshot).
func checkPages(ctx context.Context, f *os.File, pageSize int64, m fileMeta) (string, error) {
	w := &pageWalk{f: f, pageSize: pageSize, hwm: m.hwm, used: newPageSet(m.hwm)}
	w.todo = append(w.todo, pageRef{id: m.root})
	for n := 0; len(w.todo) > 0; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return "", err
			}
		}
		ref := w.todo[len(w.todo)-1]
		w.todo = w.todo[:len(w.todo)-1]
		if reason, err := w.page(ref); reason != "" || err != nil {
			return reason, err
		}
	}
	if m.freelist == noFreelist {
		// Written without a freelist (the flow file): bbolt counts every
		// page outside the trees as free.
		return "", nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	free := newPageSet(m.hwm)
	overflow, reason, err := readFreelist(f, pageSize, m, func(id uint64) string {
		if w.used.has(id) {
			return fmt.Sprintf("page %d: in use and listed as free", id)
		}
		free.add(id)
		return ""
	})
	if reason != "" || err != nil {
		return reason, err
	}
	for id := m.freelist; id <= m.freelist+overflow; id++ {
		switch {
		case w.used.has(id):
			return fmt.Sprintf("freelist page %d: page %d is also in a tree", m.freelist, id), nil
		case free.has(id):
			return fmt.Sprintf("freelist page %d: lists its own page %d as free", m.freelist, id), nil
		}
		w.used.add(id)
	}
	if id, ok := w.used.firstMissing(free, m.hwm); ok {
		return fmt.Sprintf("page %d: neither in use nor listed as free", id), nil
	}
	return "", nil
}

// pageSet is a set of page numbers below a file's high water mark.
type pageSet []uint64

func newPageSet(hwm uint64) pageSet { return make(pageSet, hwm/64+1) }

func (s pageSet) has(id uint64) bool { return s[id/64]&(1<<(id%64)) != 0 }
func (s pageSet) add(id uint64)      { s[id/64] |= 1 << (id % 64) }

// firstMissing returns the first page in [2, hwm) in neither s nor o.
func (s pageSet) firstMissing(o pageSet, hwm uint64) (uint64, bool) {
	for i := range s {
		missing := ^(s[i] | o[i])
		if i == 0 {
			missing &^= 3 // the meta pages
		}
		if missing == 0 {
			continue
		}
		id := uint64(i)*64 + uint64(bits.TrailingZeros64(missing))
		return id, id < hwm
	}
	return 0, false
}

// pageRef is a page to check, with the range of keys its parent allows it:
// [lo, hi), either end open when nil.
type pageRef struct {
	id     uint64
	lo, hi []byte
}

type pageWalk struct {
	f        *os.File
	pageSize int64
	hwm      uint64
	used     pageSet
	todo     []pageRef
	buf      []byte
}

// maxNodeBytes bounds the page (with its overflow) the walk reads at once:
// far above any record Keyport writes, far below what a damaged overflow
// count could ask for.
const maxNodeBytes = 256 << 20

// page checks one page (with its overflow) and queues what it references.
func (w *pageWalk) page(ref pageRef) (string, error) {
	id := ref.id
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
		if w.used.has(i) {
			return fmt.Sprintf("page %d: referenced twice (a loop or a shared page)", i), nil
		}
		w.used.add(i)
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
	if reason := w.nodePage(p, false, ref.lo, ref.hi); reason != "" {
		return fmt.Sprintf("page %d: %s", id, reason), nil
	}
	return "", nil
}

// nodePage checks a branch or leaf page held in p (a file page, or an
// inline bucket's page inside a value): its elements lie inside it, its
// keys rise strictly and lie in [lo, hi). It queues the pages it
// references, a branch's children with the range each may hold: from its
// own key to the next one's.
func (w *pageWalk) nodePage(p []byte, inline bool, lo, hi []byte) string {
	ne := binary.NativeEndian
	if len(p) < pageHeaderSize {
		return "shorter than a page header"
	}
	flags, count := ne.Uint16(p[8:]), int(ne.Uint16(p[10:]))
	if pageHeaderSize+count*pageElementSize > len(p) {
		return fmt.Sprintf("%d elements do not fit in it", count)
	}
	var prev []byte
	inOrder := func(i int, key []byte) string {
		switch {
		case i > 0 && bytes.Compare(prev, key) >= 0:
			return fmt.Sprintf("key %d is not above the key before it", i)
		case i == 0 && lo != nil && bytes.Compare(key, lo) < 0:
			return "its first key is below the range its parent gives it"
		case hi != nil && bytes.Compare(key, hi) >= 0:
			return fmt.Sprintf("key %d is beyond the range its parent gives it", i)
		}
		prev = key
		return ""
	}
	switch {
	case flags == branchPageFlag && !inline:
		if count == 0 {
			return "branch without elements"
		}
		children := make([]pageRef, count)
		for i := range count {
			at := pageHeaderSize + i*pageElementSize
			pos, ksize := int64(ne.Uint32(p[at:])), int64(ne.Uint32(p[at+4:]))
			if int64(at)+pos+ksize > int64(len(p)) {
				return fmt.Sprintf("branch element %d points outside the page", i)
			}
			key := p[int64(at)+pos : int64(at)+pos+ksize]
			if reason := inOrder(i, key); reason != "" {
				return reason
			}
			// The walk reuses its buffer: the ranges need copies.
			children[i] = pageRef{id: ne.Uint64(p[at+8:]), lo: bytes.Clone(key), hi: hi}
			if i > 0 {
				children[i-1].hi = children[i].lo
			}
		}
		w.todo = append(w.todo, children...)
	case flags == leafPageFlag:
		for i := range count {
			at := pageHeaderSize + i*pageElementSize
			eflags := ne.Uint32(p[at:])
			pos, ksize, vsize := int64(ne.Uint32(p[at+4:])), int64(ne.Uint32(p[at+8:])), int64(ne.Uint32(p[at+12:]))
			end := int64(at) + pos + ksize + vsize
			if end > int64(len(p)) {
				return fmt.Sprintf("leaf element %d points outside the page", i)
			}
			if reason := inOrder(i, p[int64(at)+pos:int64(at)+pos+ksize]); reason != "" {
				return reason
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
				w.todo = append(w.todo, pageRef{id: root})
			} else if reason := w.nodePage(v[bucketHeadSize:], true, nil, nil); reason != "" {
				return fmt.Sprintf("inline bucket %d: %s", i, reason)
			}
		}
	default:
		return fmt.Sprintf("unexpected page type %#x in a tree", flags)
	}
	return ""
}
