-- wrong_duckdb.sql -- a deliberately WRONG DuckDB query, to show that run.sh's agreement check
-- fails (DUCKDB_SQL=bench/peers/wrong_duckdb.sql bench/peers/run.sh must exit 1).
--
-- It compares each customer's FIRST time of each event type: a customer whose first
-- add_to_cart came before its first product_view (a stray cart, ignored by a strict funnel)
-- and who then viewed and added to cart in order is counted as stopped at stage 0, although a
-- strict journey (and windowFunnel) reaches stage 1.
SET threads = {threads};
SELECT count(t0), count(*) FILTER (t1 > t0), count(*) FILTER (t1 > t0 AND t2 > t1),
       count(*) FILTER (t1 > t0 AND t2 > t1 AND t3 > t2)
FROM (
  SELECT min(ts) FILTER (event = 'product_view') AS t0,
         min(ts) FILTER (event = 'add_to_cart') AS t1,
         min(ts) FILTER (event = 'checkout_start') AS t2,
         min(ts) FILTER (event = 'purchase') AS t3
  FROM read_ndjson('{file}', columns = {customer_id: 'VARCHAR', ts: 'BIGINT', event: 'VARCHAR'})
  GROUP BY customer_id);
