package actors

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMessageSwitchesAreExhaustive checks, on the package's source, that
// each actor's Receive has a case for every message type that carries its
// marker method: a message added without a case would otherwise be dropped
// silently, since Receive switches over any.
func TestMessageSwitchesAreExhaustive(t *testing.T) {
	files := parsePackage(t)
	for _, actor := range []struct{ receiver, marker string }{
		{"gpuActor", "gpuMessage"},
		{"verifier", "verifierMessage"},
		{"parent", "parentMessage"},
	} {
		t.Run(actor.receiver, func(t *testing.T) {
			messages := typesWithMethod(files, actor.marker)
			require.NotEmpty(t, messages, "no type has the marker %s", actor.marker)
			handled := receiveCases(t, files, actor.receiver)
			for _, m := range messages {
				assert.Contains(t, handled, m, "%s.Receive has no case for *%s, which carries %s", actor.receiver, m, actor.marker)
			}
		})
	}
}

// parsePackage parses the package's non-test files.
func parsePackage(t *testing.T) []*ast.File {
	t.Helper()
	names, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		f, err := parser.ParseFile(fset, name, src, 0)
		require.NoError(t, err)
		files = append(files, f)
	}
	return files
}

// typesWithMethod lists the types T with a method func (*T) name().
func typesWithMethod(files []*ast.File, name string) []string {
	var out []string
	for _, f := range files {
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == name && fn.Recv != nil {
				if star, ok := fn.Recv.List[0].Type.(*ast.StarExpr); ok {
					out = append(out, star.X.(*ast.Ident).Name)
				}
			}
		}
	}
	return out
}

// receiveCases lists the types T of every case *T in the type switches of
// receiver's Receive method.
func receiveCases(t *testing.T, files []*ast.File, receiver string) []string {
	t.Helper()
	var receive *ast.FuncDecl
	for _, f := range files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name != "Receive" || fn.Recv == nil {
				continue
			}
			if star, ok := fn.Recv.List[0].Type.(*ast.StarExpr); ok && star.X.(*ast.Ident).Name == receiver {
				receive = fn
			}
		}
	}
	require.NotNil(t, receive, "no method (*%s).Receive", receiver)
	var cases []string
	ast.Inspect(receive.Body, func(n ast.Node) bool {
		sw, ok := n.(*ast.TypeSwitchStmt)
		if !ok {
			return true
		}
		for _, stmt := range sw.Body.List {
			for _, expr := range stmt.(*ast.CaseClause).List {
				if star, ok := expr.(*ast.StarExpr); ok {
					if id, ok := star.X.(*ast.Ident); ok {
						cases = append(cases, id.Name)
					}
				}
			}
		}
		return true
	})
	return cases
}
