// Command testreport reads `go test -json` output, prints what plain `go
// test` prints (the output of failing tests, then one ok/FAIL line per
// package and a closing count), and scans every line of every test's output
// — passing tests included — for secret material: APIv3/APIv2 keys of the
// generated TEST merchants (TESTKEY + 25 characters) and PEM private keys.
// A leak fails the run like a failing test.
//
//	go test -json ./... > report.json; go run ./cmd/testreport report.json
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`TESTKEY[0-9A-Za-z]{25}`),
	regexp.MustCompile(`-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----`),
	regexp.MustCompile(`MII[EJ][A-Za-z0-9+/]{60,}`), // base64 DER of an RSA private key
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: testreport <go test -json output>")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer f.Close()
	ok, err := report(f, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// report prints the summary to out and reports whether the run passed with
// no secret material in any output.
func report(in io.Reader, out io.Writer) (bool, error) {
	outputs := map[string][]string{} // "package test" -> lines
	var pkgs []string
	pkgResult := map[string]event{}
	passed, failed, skipped := 0, 0, 0
	var leaks []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			fmt.Fprintln(out, string(line)) // build errors and the like, as they are
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			outputs[key] = append(outputs[key], e.Output)
			for _, p := range secretPatterns {
				if p.MatchString(e.Output) {
					leaks = append(leaks, fmt.Sprintf("%s %s: output matches %s", e.Package, e.Test, p))
				}
			}
		case "pass", "fail", "skip":
			if e.Test == "" {
				if _, seen := pkgResult[e.Package]; !seen {
					pkgs = append(pkgs, e.Package)
				}
				pkgResult[e.Package] = e
				continue
			}
			if strings.Contains(e.Test, "/") {
				continue // subtests: their parent carries the result
			}
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				fmt.Fprint(out, strings.Join(outputs[key], ""))
			case "skip":
				skipped++
			}
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	sort.Strings(pkgs)
	pkgFailed := false
	for _, p := range pkgs {
		e := pkgResult[p]
		switch e.Action {
		case "pass":
			fmt.Fprintf(out, "ok  \t%s\t%.3fs\n", p, e.Elapsed)
		case "skip":
			fmt.Fprintf(out, "?   \t%s\t[no test files]\n", p)
		default:
			pkgFailed = true
			// A package that failed outside any test (build error, panic,
			// TestMain) has its output under the package alone.
			fmt.Fprint(out, strings.Join(outputs[p+" "], ""))
			fmt.Fprintf(out, "FAIL\t%s\t%.3fs\n", p, e.Elapsed)
		}
	}
	if len(leaks) > 0 {
		fmt.Fprintln(out, "SECRET MATERIAL IN TEST OUTPUT:")
		for _, l := range leaks {
			fmt.Fprintln(out, "  "+l)
		}
	}
	if len(pkgs) == 0 {
		fmt.Fprintln(out, "no package reported a result: the test run did not happen")
		pkgFailed = true
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	return failed == 0 && !pkgFailed && len(leaks) == 0, nil
}
