/* ephemeral_crypt--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION ephemeral_crypt" to load this file. \quit
