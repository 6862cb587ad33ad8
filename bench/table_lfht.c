/* table_lfht.c -- the journey table on liburcu's cds_lfht, kept for bench_table.
 *
 * This was the engine's journey table until bench_table showed the
 * open-addressing design (src/core/journey_table.c) 1.35-5.7x faster; see
 * bench/RESULTS.md.
 *
 * Memory layout of one entry (one allocation):
 *
 *   struct entry_head { cds_lfht_node, rcu_head }   32 bytes, table-private
 *   fs_customer { hash, id_len, n_active, journey[n_funnels] }
 *   id bytes (not NUL-terminated)
 *
 * cds_lfht is a split-ordered list with RCU-protected resizing: lookups never
 * block, inserts/removals use compare-and-swap on the chain, and a removed
 * node is freed with call_rcu once every reader that could see it is gone.
 * The table is created with auto-resize so it grows with the number of live
 * customers and shrinks again when they finish.
 *
 * Why it lost (bench/RESULTS.md): every lookup walks a linked list of
 * separately allocated nodes, and with accounting its auto-resize lags far
 * behind the count, so chains grow long.
 */
#include "table_lfht.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/rculfhash.h>
#include <urcu/urcu-memb.h>

#include "tsan.h"
#include "util.h"

/* Stands for "every read-side critical section that began before now has
 * ended", which is what a grace period guarantees (see tsan.h). */
static char grace_period_sync;

struct entry_head {
    struct cds_lfht_node node;
    struct rcu_head rcu;
};

struct fs_lfht_table {
    struct cds_lfht *ht;
    uint32_t n_funnels;
    atomic_size_t count;
};

static struct entry_head *head_of(fs_customer *c)
{
    return (struct entry_head *)((char *)c - sizeof(struct entry_head));
}

static fs_customer *customer_of(struct cds_lfht_node *node)
{
    return (fs_customer *)((char *)node + sizeof(struct entry_head));
}

fs_lfht_table *fs_lfht_new(uint32_t n_funnels, size_t expected_customers)
{
    fs_lfht_table *t = fs_xcalloc(1, sizeof(*t));
    unsigned long init = 1024;
    while (init < expected_customers && init < (1ul << 24))
        init <<= 1;
    t->n_funnels = n_funnels;
    t->ht = cds_lfht_new_flavor(init, 1024, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
                                &urcu_memb_flavor, NULL);
    if (!t->ht) {
        free(t);
        return NULL;
    }
    return t;
}

static void free_entry(fs_lfht_table *t, fs_customer *c)
{
    for (uint32_t f = 0; f < t->n_funnels; f++)
        if (c->journey[f]) {
            fs_journey_release(c->journey[f]);
            free(c->journey[f]);
        }
    free(head_of(c));
}

void fs_lfht_free(fs_lfht_table *t)
{
    if (!t)
        return;
    struct cds_lfht_iter iter;
    struct cds_lfht_node *node;
    size_t n = 0, cap = 1024;
    fs_customer **all = fs_xmalloc(cap * sizeof(*all));
    urcu_memb_register_thread(); /* the freeing thread need not be a worker */
    urcu_memb_read_lock();
    cds_lfht_for_each(t->ht, &iter, node)
    {
        if (cds_lfht_del(t->ht, node) != 0)
            continue;
        if (n == cap)
            all = fs_xrealloc(all, (cap *= 2) * sizeof(*all));
        all[n++] = customer_of(node);
    }
    urcu_memb_read_unlock();
    /* Resize workers may still walk the unlinked nodes: free them only
     * after a grace period, as liburcu requires. */
    urcu_memb_synchronize_rcu();
    urcu_memb_unregister_thread();
    for (size_t i = 0; i < n; i++)
        free_entry(t, all[i]);
    free(all);
    urcu_memb_barrier(); /* let pending call_rcu frees finish before the table goes */
    cds_lfht_destroy(t->ht, NULL);
    free(t);
}

void fs_lfht_thread_enter(void)
{
    urcu_memb_register_thread();
}

void fs_lfht_thread_leave(void)
{
    urcu_memb_unregister_thread();
}

void fs_lfht_read_lock(void)
{
    urcu_memb_read_lock();
}

void fs_lfht_read_unlock(void)
{
    fs_tsan_release(&grace_period_sync);
    urcu_memb_read_unlock();
}

struct key {
    const char *id;
    size_t len;
    uint32_t n_funnels;
};

static int match(struct cds_lfht_node *node, const void *arg)
{
    const struct key *k = arg;
    const fs_customer *c = customer_of(node);
    fs_tsan_acquire(node); /* pairs with the release in insert */
    return c->id_len == k->len && memcmp(fs_customer_id(c, k->n_funnels), k->id, k->len) == 0;
}

fs_customer *fs_lfht_find(fs_lfht_table *t, uint64_t hash, const char *id, size_t len)
{
    struct key k = {id, len, t->n_funnels};
    struct cds_lfht_iter iter;
    cds_lfht_lookup(t->ht, hash, match, &k, &iter);
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&iter);
    return node ? customer_of(node) : NULL;
}

fs_customer *fs_lfht_insert(fs_lfht_table *t, uint64_t hash, const char *id, size_t len)
{
    size_t size =
        sizeof(struct entry_head) + sizeof(fs_customer) + t->n_funnels * sizeof(fs_journey *) + len;
    struct entry_head *h = fs_xcalloc(1, size);
    fs_customer *c = (fs_customer *)(h + 1);
    c->hash = hash;
    c->id_len = (uint8_t)len;
    memcpy((char *)fs_customer_id(c, t->n_funnels), id, len);
    cds_lfht_node_init(&h->node);
    fs_tsan_release(&h->node); /* cds_lfht_add publishes with a release store */
    cds_lfht_add(t->ht, hash, &h->node);
    atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
    return c;
}

static void free_after_grace(struct rcu_head *rcu)
{
    fs_tsan_acquire(&grace_period_sync);
    fs_tsan_acquire(rcu);
    free((char *)rcu - offsetof(struct entry_head, rcu));
}

void fs_lfht_remove(fs_lfht_table *t, fs_customer *c)
{
    struct entry_head *h = head_of(c);
    cds_lfht_del(t->ht, &h->node);
    atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
    fs_tsan_release(&h->rcu); /* the owner's last writes happen before the free */
    urcu_memb_call_rcu(&h->rcu, free_after_grace);
}

size_t fs_lfht_count(const fs_lfht_table *t)
{
    return atomic_load_explicit(&((fs_lfht_table *)t)->count, memory_order_relaxed);
}
