package account_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/webp"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

func testImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 90, 255})
		}
	}
	return img
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withPNGText inserts a tEXt chunk (metadata a camera or editor might
// leave) after the IHDR chunk of a PNG.
func withPNGText(t *testing.T, p []byte, text string) []byte {
	t.Helper()
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature, IHDR length, type, data, CRC
	chunk := []byte("tEXt" + "Comment\x00" + text)
	var out bytes.Buffer
	out.Write(p[:ihdrEnd])
	_ = binary.Write(&out, binary.BigEndian, uint32(len(chunk)-4))
	out.Write(chunk)
	_ = binary.Write(&out, binary.BigEndian, crc32IEEE(chunk))
	out.Write(p[ihdrEnd:])
	if _, err := png.Decode(bytes.NewReader(out.Bytes())); err != nil {
		t.Fatalf("test PNG with text chunk does not decode: %v", err)
	}
	return out.Bytes()
}

func crc32IEEE(b []byte) uint32 {
	crc := ^uint32(0)
	for _, c := range b {
		crc ^= uint32(c)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ 0xEDB88320
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

// withJPEGComment inserts a COM segment after the SOI marker of a JPEG.
func withJPEGComment(p []byte, text string) []byte {
	seg := []byte{0xFF, 0xFE, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(2+len(text)))
	out := append([]byte{}, p[:2]...)
	out = append(out, seg...)
	out = append(out, text...)
	return append(out, p[2:]...)
}

// solidWebP builds a lossless WebP (VP8L) of one colour, by the format's
// specification (RFC 9649): a header with the size, no transforms, no
// colour cache, and five single-symbol prefix codes, so the pixels take no
// bits at all. That also makes a file of a few bytes that claims an
// enormous size, as a decompression bomb would.
func solidWebP(width, height int, r, g, b byte) []byte {
	var bits bitWriter
	bits.write(0x2f, 8) // VP8L signature
	bits.write(uint64(width-1), 14)
	bits.write(uint64(height-1), 14)
	bits.write(0, 1)                              // alpha not used
	bits.write(0, 3)                              // version 0
	bits.write(0, 1)                              // no transform
	bits.write(0, 1)                              // no colour cache
	bits.write(0, 1)                              // no meta prefix codes
	for _, sym := range []byte{g, r, b, 255, 0} { // green, red, blue, alpha, distance
		bits.write(1, 1) // simple code
		bits.write(0, 1) // one symbol
		bits.write(1, 1) // the symbol takes 8 bits
		bits.write(uint64(sym), 8)
	}
	data := bits.bytes()
	if len(data)%2 == 1 {
		data = append(data, 0) // RIFF chunks are padded to even length
	}
	var out bytes.Buffer
	out.WriteString("RIFF")
	_ = binary.Write(&out, binary.LittleEndian, uint32(4+8+len(data)))
	out.WriteString("WEBPVP8L")
	_ = binary.Write(&out, binary.LittleEndian, uint32(len(data)))
	out.Write(data)
	return out.Bytes()
}

// bitWriter writes little-endian bit fields, least significant bit first,
// as VP8L reads them.
type bitWriter struct {
	buf  []byte
	acc  uint64
	nacc uint
}

func (w *bitWriter) write(v uint64, n uint) {
	w.acc |= v << w.nacc
	w.nacc += n
	for w.nacc >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.nacc -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	if w.nacc > 0 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc, w.nacc = 0, 0
	}
	return w.buf
}

func TestSolidWebPIsValid(t *testing.T) {
	img, err := webp.Decode(bytes.NewReader(solidWebP(3, 2, 10, 200, 30)))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 3 || img.Bounds().Dy() != 2 {
		t.Fatalf("bounds %v", img.Bounds())
	}
	if r, g, b, _ := img.At(2, 1).RGBA(); r>>8 != 10 || g>>8 != 200 || b>>8 != 30 {
		t.Fatalf("colour %d %d %d", r>>8, g>>8, b>>8)
	}
}

func TestSetAvatarAccepts(t *testing.T) {
	ctx := context.Background()
	const secret = "GPS 52.52N 13.40E"
	for name, c := range map[string]struct {
		data         []byte
		wantW, wantH int
	}{
		"png":              {encodePNG(t, testImage(40, 30)), 40, 30},
		"png, large":       {encodePNG(t, testImage(600, 300)), 256, 128},
		"png, tall":        {encodePNG(t, testImage(100, 1000)), 25, 256},
		"png with text":    {withPNGText(t, encodePNG(t, testImage(20, 20)), secret), 20, 20},
		"jpeg":             {encodeJPEG(t, testImage(300, 300)), 256, 256},
		"jpeg with a note": {withJPEGComment(encodeJPEG(t, testImage(16, 16)), secret), 16, 16},
		"webp":             {solidWebP(64, 32, 1, 2, 3), 64, 32},
		"webp, large":      {solidWebP(1000, 500, 1, 2, 3), 256, 128},
		"png at the limit": {encodePNG(t, image.NewGray(image.Rect(0, 0, 4096, 4096))), 256, 256},
	} {
		t.Run(name, func(t *testing.T) {
			svc, db, clock := newProfileService(t, account.Policy{})
			u := newProfileUser(t, svc, "alice")
			if err := svc.Users.SetAvatar(ctx, u.ID, c.data); err != nil {
				t.Fatalf("refused: %v", err)
			}
			ctype, data, mod, err := svc.Users.Avatar(ctx, u.ID)
			if err != nil || ctype != "image/png" || !mod.Equal(clock.Now()) {
				t.Fatalf("Avatar = %q %v %v", ctype, mod, err)
			}
			if bytes.Contains(data, []byte(secret)) {
				t.Fatal("the upload's metadata is served")
			}
			if !strings.HasPrefix(name, "png") && bytes.Equal(data, c.data) {
				t.Fatal("the upload is served as sent")
			}
			img, err := png.Decode(bytes.NewReader(data))
			if err != nil || img.Bounds().Dx() != c.wantW || img.Bounds().Dy() != c.wantH {
				t.Fatalf("stored image: %v %v, want %dx%d", err, img.Bounds(), c.wantW, c.wantH)
			}
			if got := getUser(t, db, u.ID); !got.AvatarAt.Equal(clock.Now()) {
				t.Errorf("AvatarAt = %v", got.AvatarAt)
			}
		})
	}
}

func TestSetAvatarRefuses(t *testing.T) {
	ctx := context.Background()
	var gifData bytes.Buffer
	if err := gif.Encode(&gifData, testImage(8, 8), nil); err != nil {
		t.Fatal(err)
	}
	wide := image.NewGray(image.Rect(0, 0, 5000, 1))
	pngHeader := encodePNG(t, testImage(4, 4))[:33]
	oversized := append(encodePNG(t, testImage(4, 4)), make([]byte, account.MaxAvatarBytes)...)
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"empty":                  {nil, "Choose an image"},
		"gif":                    {gifData.Bytes(), "PNG, JPEG or WebP"},
		"html":                   {[]byte("<html><script>alert(1)</script></html>"), "PNG, JPEG or WebP"},
		"svg":                    {[]byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), "PNG, JPEG or WebP"},
		"text named .png":        {[]byte("this is not an image, whatever its name says"), "PNG, JPEG or WebP"},
		"png signature, garbage": {append([]byte("\x89PNG\r\n\x1a\n"), strings.Repeat("x", 100)...), "could not be read"},
		"jpeg magic, png body":   {append([]byte{0xFF, 0xD8, 0xFF}, encodePNG(t, testImage(4, 4))...), "could not be read"},
		"truncated png":          {pngHeader, "could not be read"},
		"riff, not webp":         {append([]byte("RIFF\x04\x00\x00\x00WAVE"), make([]byte, 32)...), "PNG, JPEG or WebP"},
		"over 1 MiB":             {oversized, "at most 1 MiB"},
		"5000 pixels wide png":   {encodePNG(t, wide), "4096 by 4096"},
		"webp bomb":              {solidWebP(4097, 4097, 0, 0, 0), "4096 by 4096"},
		"webp, 16000 tall":       {solidWebP(1, 16000, 0, 0, 0), "4096 by 4096"},
	} {
		t.Run(name, func(t *testing.T) {
			svc, db, _ := newProfileService(t, account.Policy{})
			u := newProfileUser(t, svc, "alice")
			err := svc.Users.SetAvatar(ctx, u.ID, c.data)
			if account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != "picture" || !strings.Contains(account.ErrorMessage(err), c.want) {
				t.Fatalf("err = %v, want Invalid with %q", err, c.want)
			}
			if got := getUser(t, db, u.ID); !got.AvatarAt.IsZero() {
				t.Error("a refused upload set the avatar time")
			}
			if _, err := db.GetAvatar(ctx, u.ID); err == nil {
				t.Error("a refused upload was stored")
			}
		})
	}
}

func TestAvatarLocksAndRemoval(t *testing.T) {
	ctx := context.Background()
	svc, db, clock := newProfileService(t, account.Policy{})
	u := newProfileUser(t, svc, "alice")
	if err := svc.Users.SetAvatar(ctx, u.ID, encodePNG(t, testImage(10, 10))); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	if err := svc.Users.RemoveAvatar(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if got := getUser(t, db, u.ID); !got.AvatarAt.IsZero() || !got.UpdatedAt.Equal(clock.Now()) {
		t.Errorf("after removal: %+v", got)
	}
	ctype, data, _, err := svc.Users.Avatar(ctx, u.ID)
	if err != nil || ctype != "image/svg+xml" || !bytes.Contains(data, []byte(">A<")) {
		t.Fatalf("fallback: %q %s %v", ctype, data, err)
	}
	// Removing twice is fine; an unknown user is not.
	if err := svc.Users.RemoveAvatar(ctx, u.ID); err != nil {
		t.Errorf("second removal: %v", err)
	}
	if _, _, _, err := svc.Users.Avatar(ctx, "nobody"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("unknown user's avatar: %v", err)
	}
	if err := svc.Users.SetAvatar(ctx, "nobody", encodePNG(t, testImage(4, 4))); account.ErrorCode(err) != account.NotFound {
		t.Errorf("avatar for an unknown user: %v", err)
	}

	// Locked by the admin, or owned by a directory: refused both ways.
	locked, ldb, _ := newProfileService(t, account.Policy{ProfilesLocked: true})
	bob := newProfileUser(t, locked, "bob")
	if err := locked.Users.SetAvatar(ctx, bob.ID, encodePNG(t, testImage(4, 4))); account.ErrorCode(err) != account.Forbidden || account.ErrorField(err) != "picture" {
		t.Errorf("upload while locked: %v", err)
	}
	if err := locked.Users.RemoveAvatar(ctx, bob.ID); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("removal while locked: %v", err)
	}
	if _, err := ldb.GetAvatar(ctx, bob.ID); err == nil {
		t.Error("locked upload stored")
	}
	if _, err := db.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) { u.Source = "corp-ldap"; return u, nil }); err != nil {
		t.Fatal(err)
	}
	err = svc.Users.SetAvatar(ctx, u.ID, encodePNG(t, testImage(4, 4)))
	if account.ErrorCode(err) != account.Forbidden || !strings.Contains(account.ErrorMessage(err), "corp-ldap") {
		t.Errorf("upload for a directory user: %v", err)
	}
}

func TestInitialsSVG(t *testing.T) {
	for _, c := range []struct {
		u    storage.User
		want string
	}{
		{storage.User{ID: "a", Username: "alice", GivenName: "Alice", FamilyName: "Liddell"}, "AL"},
		{storage.User{ID: "a", Username: "bob"}, "B"},
		{storage.User{ID: "a", Username: "x", Name: "Jean-Luc von Picard"}, "JP"},
		{storage.User{ID: "a", Username: "x", Name: `<script>alert("x")</script>`}, "SS"},
		{storage.User{ID: "a", Username: "x", Name: "&amp; <b>"}, "AB"},
		{storage.User{ID: "a", Username: "x", Name: "Ærø Ødegård"}, "ÆØ"},
	} {
		svg := account.InitialsSVG(c.u)
		// Well-formed XML whose only text is the initials, with no script,
		// no event handler, no style, no link.
		dec := xml.NewDecoder(bytes.NewReader(svg))
		var text strings.Builder
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%q: not well-formed: %v\n%s", c.u.Name, err, svg)
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				if n := tok.Name.Local; n != "svg" && n != "rect" && n != "text" {
					t.Errorf("%q: element %s", c.u.Name, n)
				}
				for _, a := range tok.Attr {
					if n := strings.ToLower(a.Name.Local); strings.HasPrefix(n, "on") || n == "style" || n == "href" {
						t.Errorf("%q: attribute %s", c.u.Name, n)
					}
				}
			case xml.CharData:
				text.Write(tok)
			}
		}
		if got := strings.TrimSpace(text.String()); got != c.want {
			t.Errorf("initials of %q = %q, want %q", c.u.Name, got, c.want)
		}
	}
	// The colour is fixed per user.
	a := account.InitialsSVG(storage.User{ID: "same", Username: "x"})
	if !bytes.Equal(a, account.InitialsSVG(storage.User{ID: "same", Username: "x"})) {
		t.Error("the initials image changes between calls")
	}
}

// TestPairwiseAvatar: the avatar ID a pairwise app is given reads back to
// the person's picture, and an imported user ID that happens to look like
// one is still that user's.
func TestPairwiseAvatar(t *testing.T) {
	ctx := context.Background()
	svc, db, _ := newProfileService(t, account.Policy{})
	subjects, err := account.NewSubjects(bytes.Repeat([]byte{3}, account.SubjectKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	svc.Users.SetSubjects(subjects)
	u := newProfileUser(t, svc, "alice")
	shop := storage.Client{ID: "shop", SubjectType: account.SubjectPairwise, RedirectURIs: []string{"https://shop.example/cb"}}
	id := strings.TrimPrefix(subjects.PairwiseAvatarPath(subjects.Subject(shop, u.ID), u), "/avatar/")
	if ctype, data, _, err := svc.Users.Avatar(ctx, id); err != nil || ctype != "image/svg+xml" || !bytes.Contains(data, []byte(">A<")) {
		t.Errorf("alice's avatar by shop's avatar ID %q: %q %s %v", id, ctype, data, err)
	}
	if err := db.CreateUser(ctx, storage.User{ID: "p.imported", Username: "imported", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if ctype, data, _, err := svc.Users.Avatar(ctx, "p.imported"); err != nil || ctype != "image/svg+xml" || !bytes.Contains(data, []byte(">I<")) {
		t.Errorf("the avatar of user p.imported: %q %s %v", ctype, data, err)
	}
	if _, _, _, err := svc.Users.Avatar(ctx, "p."+strings.Repeat("A", 40)); account.ErrorCode(err) != account.NotFound {
		t.Errorf("a forged avatar ID: %v", err)
	}
}
