DROP TABLE rules;
DROP TABLE grants;
DROP TABLE access_requests;
DROP TABLE challenges;
DROP TABLE devices;
DROP TABLE enrolment_codes;
