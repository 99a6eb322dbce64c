package rules

import (
	"bufio"
	"bytes"
	"fmt"
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

func TestLoadGoodFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(name, data, Options{Channels: testChannels}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestLoadAllFields(t *testing.T) {
	data, err := os.ReadFile("testdata/all_fields.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := Parse("testdata/all_fields.good.yaml", data, Options{Channels: testChannels})
	if err != nil {
		t.Fatal(err)
	}
	r, d, sw := set.Rules[0], set.Rules[1], set.Sweeps[0]
	got := fmt.Sprintf("%s %s %v %s %v %s %s %s %d %d %v %v %s %s",
		r.Name, r.Table, r.On, r.Channel, r.Kind, r.Location, r.Locale, r.Region, r.MaxSegments, r.MaxPerMinute,
		r.Misfire.SkipOlderThan, r.Vars["min"], r.QuietHours.Location, r.Recheck)
	want := "reminder lending.installments [insert update snapshot] sms sms Europe/Vienna de-AT AT 1 5 2h0m0s 10 Europe/Berlin new.paid_at == nil"
	if got != want {
		t.Errorf("rule:\n got %s\nwant %s", got, want)
	}
	got = fmt.Sprintf("%s %s %v %s %v %d %d %v %d %v", d.Name, d.Table, d.On, d.Channel, d.Kind, d.MaxSegments,
		d.MaxPerMinute, d.Digest.Every, d.Digest.MaxItems, d.Location)
	want = "digest crm.* [insert] email email 0 100 4h0m0s 20 Europe/Berlin"
	if got != want {
		t.Errorf("digest rule:\n got %s\nwant %s", got, want)
	}
	got = fmt.Sprintf("%s %s %s %s %s %s %v %s %d %v", sw.Name, sw.Schedule, sw.Location, sw.Query, sw.KeyColumn,
		sw.Rule.Channel, sw.Rule.Kind, sw.Rule.Region, sw.Rule.MaxPerMinute, sw.Rule.QuietHours.Location)
	want = "wish 0 9 24 12 * America/New_York SELECT id, phone FROM crm.customers id webhook webhook US 1000 America/New_York"
	if got != want {
		t.Errorf("sweep:\n got %s\nwant %s", got, want)
	}
}

func TestMergeKeys(t *testing.T) {
	data, err := os.ReadFile("testdata/merge.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := Parse("merge.yaml", data, Options{Channels: testChannels})
	if err != nil {
		t.Fatal(err)
	}
	a, b := set.Rules[0], set.Rules[1]
	if a.Channel != "sms" || a.To != "e164(new.phone)" || a.Region != "DE" || b.Channel != "sms" || b.Region != "AT" {
		t.Errorf("a: %s %s %s; b: %s %s", a.Channel, a.To, a.Region, b.Channel, b.Region)
	}
}
