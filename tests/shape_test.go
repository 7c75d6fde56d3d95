package tests

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/components"
	"github.com/maricusco/infra/stacks"
)

// programFiles are the program's Go files, tests left out, parsed.
func programFiles(t *testing.T) map[string]*ast.File {
	t.Helper()
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	err := filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "tests" || d.Name() == "e2e" || strings.HasPrefix(d.Name(), ".")) && path != repoRoot {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
			require.NoError(t, err)
			files[path] = f
		}
		return nil
	})
	require.NoError(t, err)
	positions = fset
	return files
}

var positions *token.FileSet

func TestNoFileIsOver300LinesAndNoFunctionOver60(t *testing.T) {
	for path, f := range programFiles(t) {
		assert.LessOrEqual(t, positions.Position(f.End()).Line, 300, "%s: split it by concern", path)
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok {
				lines := positions.Position(fn.End()).Line - positions.Position(fn.Pos()).Line + 1
				assert.LessOrEqual(t, lines, 60, "%s: %s is %d lines", path, fn.Name.Name, lines)
			}
		}
	}
}

func TestStacksNamesServicesOnlyInTheRegistry(t *testing.T) {
	forbidden := map[string]string{}
	for _, s := range stacks.Registry {
		forbidden[s.Name] = "a service's name belongs in the registry"
		forbidden["maricusco-"+s.Name] = "a container's name comes from the registry and the prefix"
	}
	orchestrators := map[string]bool{}
	for _, o := range []components.Orchestrator{components.OrchestratorDocker, components.OrchestratorSwarm} {
		orchestrators[string(o)] = true
	}
	for path, f := range programFiles(t) {
		base := filepath.Base(path)
		if filepath.Base(filepath.Dir(path)) != "stacks" || strings.HasPrefix(base, "registry") {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			for _, lit := range compared(n) {
				if v, _ := strconv.Unquote(lit.Value); orchestrators[v] {
					t.Errorf("%s: compares the orchestrator to %q: what differs between targets is a method of components.Target", positions.Position(lit.Pos()), v)
				}
			}
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			v, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			if why, bad := forbidden[v]; bad {
				t.Errorf("%s: %q: %s", positions.Position(lit.Pos()), v, why)
			}
			return true
		})
	}
}

// compared are the string literals n compares something to: an operand of == or !=, or a case.
func compared(n ast.Node) []*ast.BasicLit {
	var exprs []ast.Expr
	switch n := n.(type) {
	case *ast.BinaryExpr:
		if n.Op == token.EQL || n.Op == token.NEQ {
			exprs = []ast.Expr{n.X, n.Y}
		}
	case *ast.CaseClause:
		exprs = n.List
	}
	var out []*ast.BasicLit
	for _, e := range exprs {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			out = append(out, lit)
		}
	}
	return out
}
