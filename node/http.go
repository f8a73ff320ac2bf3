package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// withLeaderHint names the leader on every answer, so a client learns where to send writes
// from any reply, forwarded ones included: the cluster group's, which a route about a
// SKU's group of a multi-group cluster replaces with that group's (nameGroup).
func (n *Node) withLeaderHint(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if leader := n.clusterLeader(); leader != "" {
			w.Header()[api.HeaderLeader] = n.leaderHintValue(leader)
		}
		h.ServeHTTP(w, r)
	})
}

// leaderHintValue is leader as a header value, made once per leader: Header().Set would
// make one for every answer. The server copies the header when it writes it, and nothing
// here writes into the slice.
func (n *Node) leaderHintValue(leader string) []string {
	if v := n.leaderHint.Load(); v != nil && (*v)[0] == leader {
		return *v
	}
	v := []string{leader}
	n.leaderHint.Store(&v)
	return v
}

// requestContext bounds a request that has no deadline of its own.
func (n *Node) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	if _, ok := r.Context().Deadline(); ok {
		return context.WithCancel(r.Context())
	}
	return context.WithTimeout(r.Context(), n.cfg.RequestTimeout)
}

// mutate is the write path shared by every mutation: validate, then forward to the leader
// or propose. It answers every outcome but success itself and returns false; on success it
// returns the command's result and true, for the caller to answer in its route's shape.
// The order of checks is the contract's: input rules first, then (inside apply) the
// exactly-once table, then the command.
func (n *Node) mutate(w http.ResponseWriter, r *http.Request, body []byte, cmd fsm.Command) (fsm.Result, bool) {
	if err := fsm.Validate(cmd); err != nil {
		n.writeError(w, err)
		return fsm.Result{}, false
	}
	g, err := n.groupForCommand(r, cmd)
	if !n.hosted(w, r, body, g, err) {
		return fsm.Result{}, false
	}
	if !g.leads() {
		n.forward(w, r, g, body)
		return fsm.Result{}, false
	}
	// A command of an apply level the log does not use yet would be undecodable to a member
	// still on an older build (level.go): refuse it until every member is upgraded.
	if need := fsm.KindLevel(cmd.Kind); need > g.state().Level() {
		n.writeError(w, levelRefusal(cmd.Kind.String(), "apply level", need, g.state().Level(), nil))
		return fsm.Result{}, false
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	res, rejected := newRejecter(ctx, g).reject(cmd, firstTry(r))
	if !rejected {
		o := g.submit(ctx, []fsm.Command{cmd})[0]
		if o.err != nil {
			n.writeError(w, o.err)
			return fsm.Result{}, false
		}
		res = o.res
	}
	g.countResult(cmd, res, rejected)
	if !res.OK() {
		e := &api.Error{Code: res.Code, Message: res.Message}
		writeJSON(w, res.Code.HTTPStatus(), api.ErrorBody{Error: e})
		return fsm.Result{}, false
	}
	return res, true
}

func (n *Node) handleCreateSKU(w http.ResponseWriter, r *http.Request) {
	var req api.CreateSKURequest
	body, err := readRequest(w, r, &req)
	if err == nil && req.Stock == nil {
		err = api.Errorf(api.InvalidArgument, "stock is required")
	}
	if err != nil {
		n.writeError(w, err)
		return
	}
	cmd := fsm.Command{Kind: fsm.KindCreateSKU, SKU: r.PathValue("sku"), Qty: *req.Stock,
		PerUserLimit: req.PerUserLimit, RequestID: req.RequestID}
	if res, ok := n.mutate(w, r, body, cmd); ok {
		writeJSON(w, createdOrReplayed(res), skuOut(res.SKU, res.Duplicate))
	}
}

func (n *Node) handleRestock(w http.ResponseWriter, r *http.Request) {
	var req api.RestockRequest
	body, err := readRequest(w, r, &req)
	if err != nil {
		n.writeError(w, err)
		return
	}
	cmd := fsm.Command{Kind: fsm.KindRestock, SKU: r.PathValue("sku"), Qty: req.Qty, RequestID: req.RequestID}
	if res, ok := n.mutate(w, r, body, cmd); ok {
		writeJSON(w, http.StatusOK, skuOut(res.SKU, res.Duplicate))
	}
}

func (n *Node) handleAdjust(w http.ResponseWriter, r *http.Request) {
	var req api.AdjustRequest
	body, err := readRequest(w, r, &req)
	if err != nil {
		n.writeError(w, err)
		return
	}
	cmd := fsm.Command{Kind: fsm.KindAdjust, SKU: r.PathValue("sku"), Qty: req.Qty, Reason: req.Reason, RequestID: req.RequestID}
	if res, ok := n.mutate(w, r, body, cmd); ok {
		writeJSON(w, http.StatusOK, skuOut(res.SKU, res.Duplicate))
	}
}

func (n *Node) handleRetire(w http.ResponseWriter, r *http.Request) {
	var req api.RetireRequest
	body, err := readRequest(w, r, &req)
	if err != nil {
		n.writeError(w, err)
		return
	}
	cmd := fsm.Command{Kind: fsm.KindRetire, SKU: r.PathValue("sku"), RequestID: req.RequestID}
	if res, ok := n.mutate(w, r, body, cmd); ok {
		writeJSON(w, http.StatusOK, skuOut(res.SKU, res.Duplicate))
	}
}

func (n *Node) handleDeduct(w http.ResponseWriter, r *http.Request) {
	var req api.DeductRequest
	body, err := readBody(w, r)
	if err == nil {
		err = decodeDeduct(body, &req)
	}
	if err != nil {
		n.writeError(w, err)
		return
	}
	cmd := fsm.Command{Kind: fsm.KindDeduct, SKU: r.PathValue("sku"), Qty: req.Qty, RequestID: req.RequestID, UserID: req.UserID}
	if res, ok := n.mutate(w, r, body, cmd); ok {
		writeDeductAnswer(w, api.DeductResponse{Remaining: res.SKU.Available, Duplicate: res.Duplicate})
	}
}

// handleBatchDeduct takes many buyers' deductions in one request (the Go client batches
// concurrent calls), answers each on its own, and proposes the ones that need the log
// together.
func (n *Node) handleBatchDeduct(w http.ResponseWriter, r *http.Request) {
	req, body, err := readBatchRequest(w, r)
	if err == nil && (len(req.Items) == 0 || len(req.Items) > api.MaxBatchItems) {
		err = api.Errorf(api.InvalidArgument, "a batch needs 1..%d items, got %d", api.MaxBatchItems, len(req.Items))
	}
	if err != nil {
		n.writeError(w, err)
		return
	}
	if !n.admit(w, r, len(req.Items)) { // the rate limit counts a batch's items
		return
	}
	// Each item goes to its SKU's group; a batch all in one group is forwarded whole to
	// that group's leader when this node does not lead it.
	byGroup := map[groupStore][]int{}
	var order []groupStore
	out := api.BatchDeductResponse{Results: make([]api.DeductResult, len(req.Items))}
	var away *notHostedError // the group of every item, when this node hosts no replica of it
	for i, it := range req.Items {
		g, err := n.groupFor(it.SKU)
		if err != nil {
			var nh *notHostedError
			if errors.As(err, &nh) && (i == 0 || away != nil && away.id == nh.id) {
				away = nh
			} else {
				away = nil
			}
			out.Results[i].Error = n.apiError(err)
			continue
		}
		away = nil
		if _, ok := byGroup[g]; !ok {
			order = append(order, g)
		}
		byGroup[g] = append(byGroup[g], i)
	}
	if away != nil {
		n.hosted(w, r, body, nil, away)
		return
	}
	if len(order) == 1 && len(byGroup[order[0]]) == len(req.Items) && !order[0].leads() {
		n.hosted(w, r, body, order[0], nil) // names the group
		n.forward(w, r, order[0], body)
		return
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	for _, g := range order {
		if !g.leads() {
			// A batch across groups is split; an item of a group led elsewhere is
			// answered on its own, naming its group's leader, and may be retried there.
			e := &api.Error{Code: api.NotLeader, Message: fmt.Sprintf("this node does not lead group %d", g.groupID()), Leader: g.leaderHTTP()}
			for _, i := range byGroup[g] {
				out.Results[i].Error = e
			}
			continue
		}
		n.batchDeductIn(ctx, g, req.Items, byGroup[g], &out)
	}
	writeBatchAnswer(w, r, &out)
}

// batchDeductIn answers the items at idx, all of group g, which this node leads: the ones
// the rejecter can answer at once, the rest proposed together.
func (n *Node) batchDeductIn(ctx context.Context, g groupStore, items []api.DeductItem, idx []int, out *api.BatchDeductResponse) {
	logged := make([]fsm.Command, 0, len(idx))
	at := make([]int, 0, len(idx)) // index in items of each logged command
	rej := newRejecter(ctx, g)
	for _, i := range idx {
		it := items[i]
		cmd := fsm.Command{Kind: fsm.KindDeduct, SKU: it.SKU, Qty: it.Qty, RequestID: it.RequestID, UserID: it.UserID}
		if err := fsm.Validate(cmd); err != nil {
			out.Results[i].Error = n.apiError(err)
			continue
		}
		if res, ok := rej.reject(cmd, it.Attempt == 1); ok {
			out.Results[i] = deductResult(res)
			g.countResult(cmd, res, true)
			continue
		}
		logged = append(logged, cmd)
		at = append(at, i)
	}
	if len(logged) > 0 {
		for j, o := range g.submit(ctx, logged) {
			if o.err != nil {
				out.Results[at[j]].Error = n.apiError(o.err)
				continue
			}
			out.Results[at[j]] = deductResult(o.res)
			g.countResult(logged[j], o.res, false)
		}
	}
}

func deductResult(res fsm.Result) api.DeductResult {
	if !res.OK() {
		return api.DeductResult{Error: &api.Error{Code: res.Code, Message: res.Message}}
	}
	return api.DeductResult{Remaining: res.SKU.Available, Duplicate: res.Duplicate}
}

func (n *Node) handleReserve(w http.ResponseWriter, r *http.Request) {
	var req api.ReserveRequest
	body, err := readRequest(w, r, &req)
	if err != nil {
		n.writeError(w, err)
		return
	}
	cmd := fsm.Command{Kind: fsm.KindReserve, OrderID: req.OrderID, UserID: req.UserID,
		TTLMillis: req.TTLMillis, RequestID: req.RequestID}
	for _, l := range req.Lines {
		cmd.Lines = append(cmd.Lines, fsm.Line{SKU: l.SKU, Qty: l.Qty})
	}
	if res, ok := n.mutate(w, r, body, cmd); ok {
		writeJSON(w, createdOrReplayed(res), orderOut(res.Order, res.Duplicate))
	}
}

var orderActions = map[string]fsm.Kind{"confirm": fsm.KindConfirm, "cancel": fsm.KindCancel, "ship": fsm.KindShip}

func (n *Node) handleOrderAction(w http.ResponseWriter, r *http.Request) {
	kind, ok := orderActions[r.PathValue("action")]
	if !ok {
		n.writeError(w, api.Errorf(api.NotFound, "no route %s %s", r.Method, r.URL.Path))
		return
	}
	var req api.OrderActionRequest
	body, err := readRequest(w, r, &req)
	if err != nil {
		n.writeError(w, err)
		return
	}
	cmd := fsm.Command{Kind: kind, OrderID: r.PathValue("id"), RequestID: req.RequestID}
	if res, ok := n.mutate(w, r, body, cmd); ok {
		writeJSON(w, http.StatusOK, orderOut(res.Order, res.Duplicate))
	}
}

// read serves a read of one group at the consistency the request asks for: strong reads
// are forwarded to the group's leader and made linearizable there; stale reads are local.
func (n *Node) read(w http.ResponseWriter, r *http.Request, g groupStore, serve func() (any, error)) {
	switch c := r.URL.Query().Get("consistency"); c {
	case "", api.Strong:
		if !g.leads() {
			n.forward(w, r, g, nil)
			return
		}
		ctx, cancel := n.requestContext(r)
		defer cancel()
		if err := g.strongRead(ctx); err != nil {
			n.writeError(w, err)
			return
		}
	case api.Stale:
	default:
		n.writeError(w, errConsistency(c))
		return
	}
	v, err := serve()
	if err != nil {
		n.writeError(w, err)
		return
	}
	setReadHeaders(w, g)
	writeJSON(w, http.StatusOK, v)
}

func errConsistency(c string) error {
	return api.Errorf(api.InvalidArgument, "consistency must be %q or %q, got %q", api.Strong, api.Stale, c)
}

func (n *Node) handleGetSKU(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	if !fsm.ValidSKU(sku) {
		n.writeError(w, api.Errorf(api.InvalidArgument, "sku must be 1-%d characters of [A-Za-z0-9._:-]", fsm.MaxSKULen))
		return
	}
	g, err := n.groupFor(sku)
	if !n.hosted(w, r, nil, g, err) {
		return
	}
	n.read(w, r, g, func() (any, error) {
		s, err := g.state().GetSKU(sku)
		return skuOut(s, false), err
	})
}

const maxListLimit = 1000

// handleListSKUs lists SKUs in id order, merged over every data group (or one, with
// ?group=N). A stale list reads this node's replicas. A strong list of several groups
// reads each group linearizably where it is led: here, or through its leader (a strong
// list of that group alone), so no group's page is older than the request; no node leads
// them all in general, so forwarding the whole request would not do.
func (n *Node) handleListSKUs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryInt(q.Get("limit"), 100, 1, maxListLimit)
	if err != nil {
		n.writeError(w, api.Errorf(api.InvalidArgument, "limit: %v", err))
		return
	}
	prefix, after := q.Get("prefix"), q.Get("after")
	if id := q.Get("group"); id != "" {
		g, err := n.dataGroup(id)
		if n.hosted(w, r, nil, g, err) {
			n.read(w, r, g, func() (any, error) { return listPage(g, prefix, after, limit) })
		}
		return
	}
	c := q.Get("consistency")
	if c != "" && c != api.Strong && c != api.Stale {
		n.writeError(w, errConsistency(c))
		return
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	pages, err := n.groupPages(ctx, r, c == api.Stale, prefix, after, limit)
	if err != nil {
		n.writeError(w, err)
		return
	}
	// Each group's page is in id order; the merged page is the first limit of their
	// union, so paging with after works as with one group.
	out := api.SKUList{SKUs: slices.Concat(pages...)}
	slices.SortFunc(out.SKUs, func(a, b api.SKU) int { return strings.Compare(a.SKU, b.SKU) })
	out.SKUs = out.SKUs[:min(limit, len(out.SKUs))]
	writeJSON(w, http.StatusOK, out)
}

// listPage is one group's page of SKUs from its local state.
func listPage(g groupStore, prefix, after string, limit int) (api.SKUList, error) {
	skus, err := g.state().ListSKUs(prefix, after, limit)
	if err != nil {
		return api.SKUList{}, err
	}
	out := api.SKUList{SKUs: make([]api.SKU, len(skus))}
	for i, s := range skus {
		out.SKUs[i] = skuOut(s, false)
	}
	return out, nil
}

// groupPages reads every data group's page, concurrently: a group this node hosts from its
// own replica (stale), or after a strong read where this node leads it; any other from
// where it is led, asking for that group's page alone (GET /v1/skus?group=N, askGroup).
// A node hosts only some groups, and leads fewer, so no node could answer a list of
// them all from its own state. The first failure is the answer: the client retries.
func (n *Node) groupPages(ctx context.Context, r *http.Request, stale bool, prefix, after string, limit int) ([][]api.SKU, error) {
	ids := n.dataGroupIDs()
	pages := make([][]api.SKU, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			g := n.stores.store(id)
			if g != nil && (stale || g.leads()) {
				if !stale {
					if errs[i] = g.strongRead(ctx); errs[i] != nil {
						return
					}
				}
				var page api.SKUList
				page, errs[i] = listPage(g, prefix, after, limit)
				pages[i] = page.SKUs
				return
			}
			sub := r.Clone(ctx)
			q := sub.URL.Query()
			q.Set("group", strconv.FormatUint(id, 10))
			sub.URL.RawQuery = q.Encode()
			var page api.SKUList
			errs[i] = n.askGroup(ctx, sub, g, id, &page)
			pages[i] = page.SKUs
		})
	}
	wg.Wait()
	return pages, errors.Join(errs...)
}

// dataGroup is the data group a ?group= parameter names, as every route that takes one
// reads it: this node's replica of it, a notHostedError for a placed group it hosts no
// replica of (hosted forwards the request there), else why not (opGroup).
func (n *Node) dataGroup(id string) (groupStore, error) {
	gid, err := strconv.ParseUint(id, 10, 64)
	switch {
	case err != nil:
		return nil, api.Errorf(api.InvalidArgument, "group must be a group id, got %q", id)
	case gid == api.MetaGroupID && n.stores.placed():
		return nil, errMetaGroupOp
	}
	if g := n.stores.store(gid); g != nil {
		return g, nil
	}
	if nh := n.notHosted(gid); nh != nil {
		return nil, nh
	}
	if _, err := n.opGroup(gid); err != nil {
		return nil, err
	}
	return nil, api.Errorf(api.Internal, "group %d is hosted here but not served", gid)
}

func (n *Node) handleHistory(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	limit, err := queryInt(r.URL.Query().Get("limit"), 100, 1, maxListLimit)
	if err != nil {
		n.writeError(w, api.Errorf(api.InvalidArgument, "limit: %v", err))
		return
	}
	g, err := n.groupFor(sku)
	if !n.hosted(w, r, nil, g, err) {
		return
	}
	n.read(w, r, g, func() (any, error) {
		moves, err := g.state().History(sku, limit)
		out := api.History{SKU: sku, Movements: make([]api.Movement, len(moves))}
		for i, m := range moves {
			out.Movements[i] = api.Movement{Index: m.Index, Seq: m.Seq, Kind: m.Kind.String(), Qty: m.Qty,
				OrderID: m.OrderID, RequestID: m.RequestID, UserID: m.UserID, Reason: m.Reason, TimeMS: m.Time}
		}
		return out, err
	})
}

func (n *Node) handleGetOrder(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var g groupStore
	var err error
	if gid := r.URL.Query().Get("group"); gid != "" {
		g, err = n.dataGroup(gid)
	} else {
		g, err = n.groupForOrder(r, id)
	}
	if !n.hosted(w, r, nil, g, err) {
		return
	}
	n.read(w, r, g, func() (any, error) {
		o, err := g.state().GetOrder(id, g.clusterNow())
		return orderOut(o, false), err
	})
}

func queryInt(s string, def, lo, hi int) (int, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("must be an integer %d..%d, got %q", lo, hi, s)
	}
	return v, nil
}

// createdOrReplayed is the status of a creating command's success: 201, or 200 when it
// is the first answer replayed.
func createdOrReplayed(res fsm.Result) int {
	if res.Duplicate {
		return http.StatusOK
	}
	return http.StatusCreated
}

func skuOut(s fsm.SKU, dup bool) api.SKU {
	return api.SKU{SKU: s.SKU, Available: s.Available, Reserved: s.Reserved, Sold: s.Sold,
		PerUserLimit: s.PerUserLimit, Version: s.Version, Retired: s.Retired, Duplicate: dup}
}

func orderOut(o fsm.Order, dup bool) api.Order {
	out := api.Order{OrderID: o.OrderID, UserID: o.UserID, Status: o.Status.String(), ExpiresAtMS: o.ExpiresAt,
		CreatedAtMS: o.CreatedAt, Version: o.Version, Duplicate: dup, Lines: make([]api.Line, len(o.Lines))}
	for i, l := range o.Lines {
		out.Lines[i] = api.Line{SKU: l.SKU, Qty: l.Qty}
	}
	return out
}
