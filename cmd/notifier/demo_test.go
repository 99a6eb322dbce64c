package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The demo is the README's quick start: it must keep working with the shipped configs, rules
// and schema. It starts its own devdb cluster and checks every expected SMS arrived once.
func TestDemoRunsEndToEnd(t *testing.T) {
	var out, errOut bytes.Buffer
	err := App(&out, &errOut).RunContext(context.Background(), []string{"notifier", "demo",
		"--config", "../../configs/demo.yaml", "--schema", "../../configs/schema.sql"})
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{
		"SMS to +49*******89: Hallo Anna, Ihr Vertrag 1001 über 1.500,00 € ist jetzt aktiv.\n",
		"SMS to +49*******89: \"Winter sale -20%\" can be claimed in one minute. Be quick!\n",
		"demo ok: ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
