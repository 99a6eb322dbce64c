package cdc_test

import (
	"testing"

	"notifier/cdc"
)

func TestXATransactionOnWatchedTableIsRefused(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".t (id INT PRIMARY KEY)")
	from := current(t)
	pdb, err := cluster.Primary().DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pdb.Conn(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"XA START 'x1'", "INSERT INTO " + db + ".t VALUES (1)", "XA END 'x1'", "XA PREPARE 'x1'", "XA COMMIT 'x1'"} {
		if _, err := conn.ExecContext(ctxT(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	primary(t, "INSERT INTO "+db+".t VALUES (2)")
	s := startStream(t, readerOpts(db+".*"), from)
	mustErrorIs(t, s.fatal(), cdc.ErrUnsupported, db+".t", "XA")
}
