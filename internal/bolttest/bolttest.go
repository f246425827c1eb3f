// Package bolttest reads a closed bbolt file the way the damage tests need
// to: which page is what, so that they can damage each kind of page.
package bolttest

import (
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// Page is one page of a bbolt file.
type Page struct {
	ID   int
	Kind string // meta, freelist, branch, leaf or free
}

// Pages lists the pages of the closed file at path, overflow pages left
// out, by what bbolt says they are; and the file's page size.
func Pages(t testing.TB, path string) (pages []Page, pageSize int) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pageSize = db.Info().PageSize
	err = db.View(func(tx *bbolt.Tx) error {
		for id := 0; ; id++ {
			info, err := tx.Page(id)
			if err != nil {
				return err
			}
			if info == nil {
				return nil
			}
			pages = append(pages, Page{ID: id, Kind: info.Type})
			id += info.OverflowCount
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return pages, pageSize
}
