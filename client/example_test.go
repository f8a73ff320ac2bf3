package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// Buy now: each buyer takes one unit until the SKU is sold out. Retries after a lost
// answer or a leader change are the client's business, and never sell a unit twice.
func ExampleClient_Deduct() {
	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := c.CreateSKU(ctx, "tee-red-m", 3, client.WithPerUserLimit(1)); err != nil {
		log.Fatal(err)
	}
	for _, user := range []string{"ann", "bob", "ann", "cy", "dan"} {
		res, err := c.Deduct(ctx, "tee-red-m", 1, user)
		switch {
		case errors.Is(err, client.ErrSoldOut):
			fmt.Println(user + ": sold out")
		case errors.Is(err, client.ErrLimitExceeded):
			fmt.Println(user + ": one per customer")
		case err != nil:
			log.Fatal(err) // unavailable or gave up: the outcome is unknown
		default:
			fmt.Printf("%s: bought one, %d left\n", user, res.Remaining)
		}
	}
	// Output:
	// ann: bought one, 2 left
	// bob: bought one, 1 left
	// ann: one per customer
	// cy: bought one, 0 left
	// dan: sold out
}

// Reserve, then confirm once paid: the units are held for the order meanwhile, and go back
// on sale if the order is cancelled or its hold expires.
func ExampleClient_Reserve() {
	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := c.CreateSKU(ctx, "sneaker-42", 5); err != nil {
		log.Fatal(err)
	}
	order, err := c.Reserve(ctx, "order-1001", "ann", []api.Line{{SKU: "sneaker-42", Qty: 2}}, 10*time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	s, _ := c.GetSKU(ctx, "sneaker-42")
	fmt.Printf("%s %s: available %d, reserved %d\n", order.OrderID, order.Status, s.Available, s.Reserved)

	// ... the payment goes through ...
	if order, err = c.Confirm(ctx, "order-1001"); err != nil {
		log.Fatal(err) // ErrExpired: the hold ran out first
	}
	s, _ = c.GetSKU(ctx, "sneaker-42")
	fmt.Printf("%s %s: available %d, reserved %d, sold %d\n", order.OrderID, order.Status, s.Available, s.Reserved, s.Sold)
	// Output:
	// order-1001 held: available 3, reserved 2
	// order-1001 confirmed: available 3, reserved 0, sold 2
}

// Watch a SKU: its state now, then after every change, until the context ends. The watch
// reconnects by itself when the node serving it goes away.
func ExampleClient_Watch() {
	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := c.CreateSKU(ctx, "hoodie", 3); err != nil {
		log.Fatal(err)
	}
	for s, err := range c.WatchSeq(ctx, "hoodie") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("hoodie: available", s.Available)
		if s.Available == 1 {
			break // ends the watch
		}
		if _, err := c.Deduct(ctx, "hoodie", 1, "ann"); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// hoodie: available 3
	// hoodie: available 2
	// hoodie: available 1
}

// Sticky stale reads: with ConsistentHash, each user's reads go to one node while it is
// healthy, so a user never sees stock go back in time between two page views.
func ExampleConsistentHash() {
	c, err := client.New(client.Config{Endpoints: endpoints, Balancer: client.ConsistentHash(nil)})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := c.CreateSKU(ctx, "cap", 7); err != nil {
		log.Fatal(err)
	}
	var info client.ReadInfo
	s, err := c.GetSKU(ctx, "cap", client.WithKey("user-ann"), client.WithReadInfo(&info))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("cap: available", s.Available, "(read from a node", info.LastContact.Round(time.Hour), "behind the leader)")
	// Output:
	// cap: available 7 (read from a node 0s behind the leader)
}
