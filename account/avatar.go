package account

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"html"
	"image"
	_ "image/jpeg" // decoders for uploads
	"image/png"
	"strings"
	"time"
	"unicode"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"

	"github.com/keyport/keyport/storage"
)

const (
	// MaxAvatarBytes is the largest upload accepted.
	MaxAvatarBytes = 1 << 20
	// maxAvatarSide refuses images whose header promises more pixels than a
	// portrait needs, before decoding them (decompression bombs).
	maxAvatarSide = 4096
	// avatarSide is the size avatars are stored at.
	avatarSide = 256
)

// SetAvatar stores a new avatar. The type is sniffed from the bytes (PNG,
// JPEG or WebP), never taken from a file name, and the image is decoded and
// re-encoded as PNG, so nothing uploaded is served byte for byte (no
// metadata, no polyglot files).
func (s *UserService) SetAvatar(ctx context.Context, userID string, data []byte) error {
	u, err := s.getUser(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.avatarEditable(u); err != nil {
		return err
	}
	out, err := reencodeAvatar(data)
	if err != nil {
		return err
	}
	now := s.now()
	if err := s.store.PutAvatar(ctx, storage.Avatar{UserID: u.ID, ContentType: "image/png", Data: out, UpdatedAt: now}); err != nil {
		return fmt.Errorf("store avatar of %q: %w", u.ID, err)
	}
	// AvatarAt versions the picture URL apps get, so their caches refetch.
	_, err = s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.AvatarAt, u.UpdatedAt = now, now
		return u, nil
	})
	if err != nil {
		return fmt.Errorf("update avatar time of %q: %w", u.ID, err)
	}
	return nil
}

func (s *UserService) avatarEditable(u storage.User) error {
	if locked, reason := s.FieldLock(u, "picture"); locked {
		return &Error{Code: Forbidden, Field: "picture", Message: reason}
	}
	return nil
}

// reencodeAvatar checks an upload and returns it as a PNG of at most
// avatarSide pixels a side. The header's dimensions are checked before the
// pixels are decoded, so a small file cannot make us allocate gigabytes.
func reencodeAvatar(data []byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, FieldErrorf("picture", "Choose an image file to upload.")
	}
	if len(data) > MaxAvatarBytes {
		return nil, FieldErrorf("picture", "The image is too large: at most 1 MiB.")
	}
	format := imageFormat(data)
	if format == "" {
		return nil, FieldErrorf("picture", "Upload a PNG, JPEG or WebP image.")
	}
	cfg, got, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || got != format {
		return nil, FieldErrorf("picture", "The image could not be read.")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxAvatarSide || cfg.Height > maxAvatarSide {
		return nil, FieldErrorf("picture", "The image is too large: at most 4096 by 4096 pixels.")
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, FieldErrorf("picture", "The image could not be read.")
	}
	out, err := encodeAvatar(img)
	if err != nil {
		return nil, fmt.Errorf("encode avatar: %w", err)
	}
	return out, nil
}

// sniffImage accepts the magic numbers of PNG, JPEG and WebP only.
func sniffImage(b []byte) bool { return imageFormat(b) != "" }

// imageFormat names the format from the magic numbers of PNG, JPEG and WebP
// (as image.DecodeConfig names it), or returns "" for anything else.
func imageFormat(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return "jpeg"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "webp"
	}
	return ""
}

// encodeAvatar scales img to fit avatarSide (keeping its aspect) and
// encodes it as PNG.
func encodeAvatar(img image.Image) ([]byte, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w > avatarSide || h > avatarSide {
		if w >= h {
			w, h = avatarSide, max(1, h*avatarSide/w)
		} else {
			w, h = max(1, w*avatarSide/h), avatarSide
		}
	}
	img = halveTowards(img, w, h)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
	var buf bytes.Buffer
	if err := png.Encode(&buf, dst); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// halveTowards halves img while it is more than twice the target size.
// Catmull-Rom's cost grows with the reduction (a 4096-pixel upload took most
// of a second); a bilinear halving averages each 2×2 block exactly, so the
// quality stays and the final filter works on a small image.
func halveTowards(img image.Image, w, h int) image.Image {
	for b := img.Bounds(); b.Dx() > 2*w && b.Dy() > 2*h; b = img.Bounds() {
		half := image.NewRGBA(image.Rect(0, 0, (b.Dx()+1)/2, (b.Dy()+1)/2))
		draw.ApproxBiLinear.Scale(half, half.Bounds(), img, b, draw.Src, nil)
		img = half
	}
	return img
}

// RemoveAvatar deletes the uploaded avatar; the initials image takes its place.
func (s *UserService) RemoveAvatar(ctx context.Context, userID string) error {
	u, err := s.getUser(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.avatarEditable(u); err != nil {
		return err
	}
	if err := s.store.DeleteAvatar(ctx, u.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("delete avatar of %q: %w", u.ID, err)
	}
	now := s.now()
	_, err = s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.AvatarAt, u.UpdatedAt = time.Time{}, now
		return u, nil
	})
	if err != nil {
		return fmt.Errorf("remove avatar of %q: %w", u.ID, err)
	}
	return nil
}

// Avatar returns the user's picture: the uploaded one, or an initials image.
func (s *UserService) Avatar(ctx context.Context, userID string) (contentType string, data []byte, modTime time.Time, err error) {
	if s.subjects != nil && strings.HasPrefix(userID, pairwiseAvatarPrefix) {
		// The avatar ID a pairwise app was given (Subjects.PairwiseAvatarPath);
		// one that does not open is a user ID (an imported one may start
		// so too).
		if sealed, ok := s.subjects.avatarUserOf(userID); ok {
			userID = sealed
		}
	}
	a, err := s.store.GetAvatar(ctx, userID)
	if err == nil {
		return a.ContentType, a.Data, a.UpdatedAt, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return "", nil, time.Time{}, fmt.Errorf("load avatar of %q: %w", userID, err)
	}
	u, err := s.getUser(ctx, userID)
	if err != nil {
		return "", nil, time.Time{}, err
	}
	return "image/svg+xml", InitialsSVG(u), u.UpdatedAt, nil
}

// setDirectoryPicture stores a directory's photo of the user as their
// avatar. The photo is decoded and re-encoded like an upload; a photo
// that does not decode is ignored.
func (s *UserService) setDirectoryPicture(ctx context.Context, userID string, data []byte) {
	if len(data) > MaxAvatarBytes || !sniffImage(data) {
		return
	}
	// Check the promised size before decoding, as for uploads.
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxAvatarSide || cfg.Height > maxAvatarSide {
		return
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return
	}
	out, err := encodeAvatar(img)
	if err != nil {
		return
	}
	now := s.now()
	if err := s.store.PutAvatar(ctx, storage.Avatar{UserID: userID, ContentType: "image/png", Data: out, UpdatedAt: now}); err != nil {
		return
	}
	_, _ = s.store.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) {
		u.AvatarAt = now
		return u, nil
	})
}

// InitialsSVG draws the user's initials on a colour derived from their ID.
// The text is XML-escaped and the image holds no script or style.
func InitialsSVG(u storage.User) []byte {
	initials := initialsOf(DisplayName(u))
	sum := sha256.Sum256([]byte(u.ID))
	hue := int(sum[0])*360/256 + 0
	return fmt.Appendf(nil, `<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256" role="img" aria-label="%s">`+
		`<rect width="256" height="256" fill="hsl(%d, 45%%, 42%%)"/>`+
		`<text x="128" y="128" dy="0.35em" text-anchor="middle" font-family="system-ui, sans-serif" font-size="104" font-weight="600" fill="#ffffff">%s</text></svg>`,
		html.EscapeString(initials), hue, html.EscapeString(initials))
}

// initialsOf takes the first letter of the first and last word.
func initialsOf(name string) string {
	words := strings.FieldsFunc(name, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) == 0 {
		return "?"
	}
	first := []rune(words[0])[:1]
	if len(words) == 1 {
		return strings.ToUpper(string(first))
	}
	last := []rune(words[len(words)-1])[:1]
	return strings.ToUpper(string(first) + string(last))
}
