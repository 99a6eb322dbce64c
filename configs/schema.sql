-- Schemas of the example rules in configs/rules/ (the demo loads this file on the primary).
-- The rules are pure functions of one row, so each table carries the recipient and the names
-- its messages print (in a real application: columns the application already keeps, or a
-- denormalised copy kept by the application or a trigger).

CREATE DATABASE IF NOT EXISTS lending;
CREATE DATABASE IF NOT EXISTS crm;
CREATE DATABASE IF NOT EXISTS promo;

-- Loan contracts: an SMS when a contract becomes active (rule contract-activated).
CREATE TABLE lending.contracts (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id  BIGINT UNSIGNED NOT NULL,
  status       ENUM('draft', 'active', 'closed', 'cancelled') NOT NULL DEFAULT 'draft',
  amount       DECIMAL(12,2) NOT NULL,
  currency     CHAR(3) NOT NULL DEFAULT 'EUR',
  first_name   VARCHAR(100) NOT NULL,
  phone        VARCHAR(32) NOT NULL,
  updated_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

-- Repayment schedule: an SMS reminder 3 days before due_date at 09:00 local time
-- (rule repayment-due), cancelled when the installment is paid or deleted.
CREATE TABLE lending.installments (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  contract_id  BIGINT UNSIGNED NOT NULL,
  due_date     DATE NOT NULL,
  amount       DECIMAL(12,2) NOT NULL,
  currency     CHAR(3) NOT NULL DEFAULT 'EUR',
  paid_at      DATETIME NULL,
  first_name   VARCHAR(100) NOT NULL,
  phone        VARCHAR(32) NOT NULL,
  KEY (contract_id)
) ENGINE=InnoDB;

-- Customers: a holiday wish on December 24th at 09:00 (sweep holiday-wish).
CREATE TABLE crm.customers (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  first_name   VARCHAR(100) NOT NULL,
  phone        VARCHAR(32) NULL,
  email        VARCHAR(254) NULL,
  sms_opt_in   TINYINT(1) NOT NULL DEFAULT 0
) ENGINE=InnoDB;

-- Purchase requests: one e-mail per supplier every 4 hours listing its new requests
-- (rule supplier-digest), and an e-mail to the customer when a request is answered
-- (rule request-answered).
CREATE TABLE crm.requests (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_name  VARCHAR(100) NOT NULL,
  customer_email VARCHAR(254) NOT NULL,
  supplier_id    BIGINT UNSIGNED NOT NULL,
  supplier_email VARCHAR(254) NOT NULL,
  item           VARCHAR(200) NOT NULL,
  quantity       INT NOT NULL DEFAULT 1,
  created_at     DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  answered_at    DATETIME NULL,
  answer         TEXT NULL,
  KEY (supplier_id)
) ENGINE=InnoDB;

-- Coupon subscriptions: an SMS one minute before the coupon can be claimed
-- (rule coupon-reminder), withdrawn when the subscription is cancelled.
CREATE TABLE promo.coupon_subscriptions (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id       BIGINT UNSIGNED NOT NULL,
  phone         VARCHAR(32) NOT NULL,
  coupon_title  VARCHAR(100) NOT NULL,
  claim_at      DATETIME NOT NULL,
  cancelled     TINYINT(1) NOT NULL DEFAULT 0,
  UNIQUE KEY (user_id, coupon_title, claim_at)
) ENGINE=InnoDB;
