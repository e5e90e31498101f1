DROP TABLE witnessed_checkpoint;
