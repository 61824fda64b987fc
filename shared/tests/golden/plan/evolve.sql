ALTER TABLE `main`.`sh op`.`or``ders.v2` ADD COLUMNS (`we``ird` STRUCT<`x y`: INT, `z`: TIMESTAMP>, `tags` ARRAY<STRING>, `_rescued_data` STRING);

ALTER TABLE `main`.`sh op`.`or``ders.v2` ALTER COLUMN `id` TYPE BIGINT;

ALTER TABLE `main`.`sh op`.`or``ders.v2` ALTER COLUMN `a.b` TYPE DECIMAL(12,4);
