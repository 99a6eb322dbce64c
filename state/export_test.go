package state

import "github.com/dgraph-io/badger/v4"

type badgerTxn = badger.Txn

func keyOnly(prefix string) badger.IteratorOptions {
	return badger.IteratorOptions{Prefix: []byte(prefix)}
}
