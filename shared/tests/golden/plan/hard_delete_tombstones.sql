DELETE FROM `main`.`sh op`.`or``ders.v2` WHERE `_cdc_deleted` = true AND `_cdc_ts` < :cutoff;
