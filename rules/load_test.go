package rules

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testChannels = []string{"sms", "email", "webhook"}

// TestLoadBadFiles loads each testdata/*.bad.yaml alone and expects exactly the errors listed
// in its leading "# error: " comment lines (prometheus rulefmt style), in order.
func TestLoadBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				line, ok := strings.CutPrefix(sc.Text(), "# error: ")
				if !ok {
					break
				}
				want = append(want, line)
			}
			set, err := Parse(name, data, Options{Channels: testChannels})
			if err == nil {
				t.Fatalf("loaded %d rules, want errors %q", len(set.Rules), want)
			}
			got := Errors(err)
			var gotText []string
			for _, e := range got {
				gotText = append(gotText, e.Error())
			}
			if len(got) != len(want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), strings.Join(gotText, "\n"))
			}
			for i := range want {
				if !strings.HasPrefix(gotText[i], want[i]) {
					t.Errorf("error %d:\n got %s\nwant %s...", i, gotText[i], want[i])
				}
			}
		})
	}
}
