package render_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"notifier/render"
)

func Example() {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tmpl, err := render.Compile("repayment_due", render.Spec{
		Kind:        render.KindSMS,
		Text:        `Hallo {{ .new.name }}, {{ money .new.amount "EUR" }} sind am {{ date .new.due "long" }} fällig.`,
		MaxSegments: 2,
		Location:    berlin,
		Locale:      "de",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	row := map[string]any{
		"name":   "Anna",
		"amount": decimal.RequireFromString("1234.50"),
		"due":    time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
	}
	out, err := tmpl.Render(map[string]any{"new": row})
	fmt.Println(out.Text, out.Encoding, out.Segments, err)

	row["amount"] = nil
	_, err = tmpl.Render(map[string]any{"new": row})
	fmt.Println(err, errors.Is(err, render.ErrNullField))

	_, err = render.Compile("typo", render.Spec{Kind: render.KindSMS, Text: "Hi\n{{ money .new.amount }}"})
	var e *render.Error
	errors.As(err, &e)
	fmt.Println(e.Part, e.Line, e.Col, e.Msg)
	// Output:
	// Hallo Anna, 1.234,50 € sind am 1. Dezember 2026 fällig. GSM-7 1 <nil>
	// template "repayment_due": text:1:33: field new.amount is NULL true
	// text 2 4 wrong number of args for money: want 2, got 1
}

func ExampleMask() {
	fmt.Println(render.Mask("+4917612345689"))
	fmt.Println(render.Mask("john.doe@example.com"))
	// Output:
	// +49*******89
	// j***@example.com
}

func ExampleSegments() {
	fmt.Println(render.Segments("Ihre Rate über 12,50 € ist fällig."))
	fmt.Println(render.Segments("Ваш платёж 😀"))
	// Output:
	// GSM-7 1
	// UCS-2 1
}
