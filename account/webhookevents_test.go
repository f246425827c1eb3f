package account

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Every event type this package writes is one a hook may ask for: the
// test reads the package's source for the types it names (constants named
// Event… or Audit…, the Type of an AuditEvent literal, an assignment to
// a .Type, userEvent's first argument) and finds each in
// WebhookEventTypes, which holds each once.
func TestWebhookEventTypesAreComplete(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]string{} // type → where
	fset := token.NewFileSet()
	lit := func(e ast.Expr) (string, bool) {
		b, ok := e.(*ast.BasicLit)
		if !ok || b.Kind != token.STRING {
			return "", false
		}
		v, err := strconv.Unquote(b.Value)
		return v, err == nil && strings.Contains(v, ".")
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var found []ast.Expr
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, id := range n.Names {
					if (strings.HasPrefix(id.Name, "Event") || strings.HasPrefix(id.Name, "Audit")) && i < len(n.Values) {
						found = append(found, n.Values[i])
					}
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Type" {
					found = append(found, n.Value)
				}
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Type" && i < len(n.Rhs) {
						found = append(found, n.Rhs[i])
					}
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "userEvent" && len(n.Args) > 0 {
					found = append(found, n.Args[0])
				}
			}
			for _, e := range found {
				if v, ok := lit(e); ok {
					written[v] = fset.Position(e.Pos()).String()
				}
			}
			return true
		})
	}
	if len(written) < 40 {
		t.Fatalf("found only %d event types in the source: %v", len(written), written)
	}
	for typ, where := range written {
		if typ == "api_token.expiring" {
			continue // a notification's mail, never an audit event
		}
		if !slices.Contains(WebhookEventTypes, typ) {
			t.Errorf("%s writes %q, which WebhookEventTypes lacks", where, typ)
		}
	}
	seen := map[string]bool{}
	for _, typ := range WebhookEventTypes {
		if seen[typ] || !eventTypePattern.MatchString(typ) {
			t.Errorf("WebhookEventTypes: %q twice or malformed", typ)
		}
		seen[typ] = true
	}
}
