\set n 1 + :offset + (:client_id + :clients * random(0, :spread - 1)) % :callers
SELECT token_hash AS th, user_id AS uid, organization_id AS oid FROM bench_callers WHERE n = :n \gset
SELECT 1;
