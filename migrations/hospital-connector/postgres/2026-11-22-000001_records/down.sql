DROP TABLE received_results;
DROP TABLE records;
