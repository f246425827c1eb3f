package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestGermanProviderPages makes sure every heading and message of the
// provider's error pages (pageError literals in package provider) has
// German: the provider passes them in English and package web translates.
func TestGermanProviderPages(t *testing.T) {
	files, err := filepath.Glob("../provider/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("provider sources: %v", err)
	}
	fset := token.NewFileSet()
	checked := 0
	check := func(e ast.Expr) {
		text, ok := stringLiteral(t, e)
		if !ok {
			return
		}
		checked++
		if _, ok := catalogs["de"][text]; !ok {
			t.Errorf("%s: no German for %q", fset.Position(e.Pos()), text)
		}
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "pageError" {
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if k, ok := kv.Key.(*ast.Ident); ok && (k.Name == "heading" || k.Name == "message") {
								check(kv.Value)
							}
						}
					}
				}
			case *ast.CallExpr:
				// refused("message", value) builds a page inside explain.
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "refused" && len(n.Args) > 0 {
					check(n.Args[0])
				}
			}
			return true
		})
	}
	if checked < 15 {
		t.Fatalf("only %d provider page texts found; is the parser right?", checked)
	}
}

// stringLiteral is the value of e when e is a string literal.
func stringLiteral(t *testing.T, e ast.Expr) (string, bool) {
	t.Helper()
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	text, err := strconv.Unquote(lit.Value)
	if err != nil {
		t.Fatal(err)
	}
	return text, true
}
