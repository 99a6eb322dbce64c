package cdc_test

import (
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/shopspring/decimal"

	"notifier/cdc"
	"notifier/devdb"
)

// selectRows reads every row of query on the replica over the text protocol (the way sweeps
// read), in UTC.
func selectRows(t *testing.T, query string) ([]*mysql.Field, [][]any) {
	t.Helper()
	conn, err := client.Connect(cluster.Replica().Addr, devdb.NotifierUser, notifierPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Execute("SET time_zone = '+00:00'"); err != nil {
		t.Fatal(err)
	}
	res, err := conn.Execute(query)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	var rows [][]any
	for i := range res.Values {
		vals := make([]any, len(res.Fields))
		for j := range vals {
			vals[j] = res.Values[i][j].Value()
		}
		rows = append(rows, vals)
	}
	return res.Fields, rows
}

func TestResultRowsNormaliseLikeBinlogRows(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".types "+typesTable,
		"INSERT INTO "+db+".types VALUES "+typesRow, "INSERT INTO "+db+".types (id) VALUES (2)")
	waitReplicated(t)

	fields, rows := selectRows(t, "SELECT * FROM "+db+".types ORDER BY id")
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	res := cdc.ResultColumns(fields)
	if len(res.Columns) != len(typesWant()) || res.Columns[0] != "id" {
		t.Fatalf("columns %v", res.Columns)
	}
	got, err := res.Row(rows[0])
	if err != nil {
		t.Fatal(err)
	}
	want := typesWant() // the values the binlog test expects of the same row
	// Without the table's CHECK constraint a MariaDB JSON column is its text.
	want["j"] = `{"a":[1,"x",true,null],"b":{"c":1.5}}`
	compareRow(t, got, want)

	withNulls := cdc.Row{}
	for k := range typesWant() {
		withNulls[k] = nil
	}
	withNulls["id"] = int64(2)
	got, err = res.Row(rows[1])
	if err != nil {
		t.Fatal(err)
	}
	compareRow(t, got, withNulls)

	_, err = res.Row(rows[0][:3])
	mustErrorIs(t, err, cdc.ErrSchemaMismatch, "3 values")
}

func TestResultRowsOfComputedColumns(t *testing.T) {
	fields, rows := selectRows(t, "SELECT 1 AS one, CAST(7 AS UNSIGNED) AS u, 'x' AS s, DATE('2026-12-24') AS d, 2.50 AS dec_, NULL AS n")
	got, err := cdc.ResultColumns(fields).Row(rows[0])
	if err != nil {
		t.Fatal(err)
	}
	compareRow(t, got, cdc.Row{"one": int64(1), "u": uint64(7), "s": "x",
		"d": mustTime(t, "2026-12-24T00:00:00Z"), "dec_": mustDecimal(t, "2.50"), "n": nil})
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustDecimal(t *testing.T, s string) decimal.Decimal {
	t.Helper()
	return decimal.RequireFromString(s)
}
